package shim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These tests drive real shims as root: Debian's containerd 1.6 runc shim
// (apt-get install containerd; the containerd daemon is never started)
// and, when CRADLE_TEST_SHIM2 names one, a containerd 2.x runc shim.

const shim1 = "/usr/bin/containerd-shim-runc-v2"

var testNS = "cradle-test"

func TestMain(m *testing.M) {
	if os.Getenv("CRADLE_TEST_DEBUG") != "" {
		slog.SetLogLoggerLevel(slog.LevelDebug)
	}
	if os.Geteuid() == 0 {
		// As the daemon: shims are reparented to it and it reaps them.
		if err := runtime.EnableSubreaper(); err != nil {
			fmt.Fprintln(os.Stderr, "subreaper:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// shimCase is one shim binary to run a scenario against.
type shimCase struct{ name, path string }

// forEachShim runs fn for the 1.6 shim and, if configured, the 2.x one.
func forEachShim(t *testing.T, fn func(t *testing.T, shim string)) {
	cases := []shimCase{{"v1.6", shim1}, {"v2.x", os.Getenv("CRADLE_TEST_SHIM2")}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.path == "" {
				t.Skip("CRADLE_TEST_SHIM2 is not set: build a containerd 2.x shim " +
					"(go build github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2) and point it there")
			}
			fn(t, c.path)
		})
	}
}

// env is one test's runtime, directories and leak checks.
type env struct {
	t        *testing.T
	shim     string
	base     string // short: socket paths must fit
	rootfs   string
	cgParent string
	opts     Options
	rt       *Runtime

	mu      sync.Mutex
	exits   map[string]runtime.Exit
	exitsCh chan struct{}
	groups  map[string]bool
	created []runtime.Handle
}

func newEnv(t *testing.T, shim string) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(shim); err != nil {
		t.Skipf("no shim binary %s (apt-get install containerd): %v", shim, err)
	}
	base, err := os.MkdirTemp("", "shimt")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, shim: shim, base: base, exits: map[string]runtime.Exit{}, exitsCh: make(chan struct{}),
		groups: map[string]bool{}, cgParent: "cradle-shim-test-" + filepath.Base(base)}
	e.rootfs = buildRootfs(t, filepath.Join(base, "rootfs"))
	e.opts = Options{
		Namespace:   testNS,
		StateDir:    filepath.Join(base, "state"),
		RuncOptions: &RuncOptions{Root: filepath.Join(base, "runc")},
		OnExit:      e.onExit,
	}
	t.Cleanup(e.cleanup)
	e.rt = New(context.Background(), "test", shim, e.opts)
	return e
}

func (e *env) onExit(x runtime.Exit) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.exits[x.ID]; dup {
		e.t.Errorf("OnExit called twice for %s", x.ID)
	}
	e.exits[x.ID] = x
	close(e.exitsCh)
	e.exitsCh = make(chan struct{})
}

// waitExit waits for OnExit to report id.
func (e *env) waitExit(id string, d time.Duration) runtime.Exit {
	e.t.Helper()
	deadline := time.After(d)
	for {
		e.mu.Lock()
		x, ok := e.exits[id]
		ch := e.exitsCh
		e.mu.Unlock()
		if ok {
			return x
		}
		select {
		case <-ch:
		case <-deadline:
			e.t.Fatalf("no exit reported for %s within %v", id, d)
		}
	}
}

func buildRootfs(t *testing.T, dir string) string {
	t.Helper()
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no busybox (apt-get install busybox-static): %v", err)
	}
	if !bytes.HasPrefix(bb, []byte("\x7fELF")) {
		t.Skip("/bin/busybox is not an ELF binary")
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range []string{"sh", "sleep", "cat", "echo", "dd", "stty", "touch", "printf", "true", "seq", "head"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type ctrSpec struct {
	sandbox  string // pod; "" for the container itself
	args     []string
	memLimit int64
	terminal bool
}

// bundle writes a container's bundle; its directory is named by the ID
// as the shims expect.
func (e *env) bundle(id string, cs ctrSpec) runtime.Bundle {
	e.t.Helper()
	b, err := runtime.Bundles(filepath.Join(e.base, "bundles")).For(id)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := b.Create(); err != nil {
		e.t.Fatal(err)
	}
	sb := cs.sandbox
	if sb == "" {
		sb = id
	}
	e.mu.Lock()
	e.groups[sb] = true
	e.mu.Unlock()
	caps := []string{"CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID"}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: e.rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            cs.args,
			Env:             []string{"PATH=/bin", "HOME=/"},
			Cwd:             "/",
			Terminal:        cs.terminal,
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: true,
		},
		Hostname: "c",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=16m"}},
		},
		Annotations: map[string]string{ocispec.AnnSandboxID: sb},
		Linux: &specs.Linux{
			CgroupsPath: "/" + e.cgParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths:   []string{"/proc/kcore"},
			ReadonlyPaths: []string{"/proc/sys"},
		},
	}
	if cs.memLimit > 0 {
		swap := cs.memLimit
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &cs.memLimit, Swap: &swap}}
	}
	if err := b.WriteSpec(s); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// create writes the bundle and creates the container.
func (e *env) create(id string, cs ctrSpec, o runtime.CreateOpts) (runtime.Handle, *runtime.Created) {
	e.t.Helper()
	b := e.bundle(id, cs)
	o.ID, o.Name, o.Bundle, o.Terminal = id, id, b, cs.terminal
	if o.LogPath == "" {
		o.LogPath = filepath.Join(e.base, "logs", id+".log")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := e.rt.Create(ctx, o)
	if err != nil {
		e.t.Fatalf("create %s: %v", id, err)
	}
	h := runtime.Handle{ID: id, Bundle: b, LogPath: o.LogPath, Monitor: c.Monitor}
	e.mu.Lock()
	e.created = append(e.created, h)
	e.mu.Unlock()
	return h, c
}

func (e *env) run(id string, cs ctrSpec, o runtime.CreateOpts) (runtime.Handle, *runtime.Created) {
	e.t.Helper()
	h, c := e.create(id, cs, o)
	if err := e.rt.Start(ctx(e.t), id); err != nil {
		e.t.Fatalf("start %s: %v", id, err)
	}
	return h, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// socketFor is the socket a shim of group gid listens on: the shims hash
// the -address, the namespace and the group.
func (e *env) socketFor(gid string) string {
	sum := sha256.Sum256([]byte(filepath.Join(e.rt.grpcAddress(), testNS, gid)))
	return fmt.Sprintf("/run/containerd/s/%x", sum)
}

// shimPids are the shim processes started for this test.
func (e *env) shimPids() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte(e.rt.grpcAddress())) {
			continue
		}
		if runtime.Running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitNoShims waits for this test's shims to exit.
func (e *env) waitNoShims(d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		pids := e.shimPids()
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaks lists what the test left: shims, their sockets, mounts, cgroups.
func (e *env) leaks() []string {
	var out []string
	if pids := e.waitNoShims(3 * time.Second); len(pids) > 0 {
		out = append(out, fmt.Sprintf("shim processes %v", pids))
	}
	if z := zombieChildren(time.Second); len(z) > 0 {
		out = append(out, fmt.Sprintf("unreaped children %v", z))
	}
	e.mu.Lock()
	for gid := range e.groups {
		if _, err := os.Lstat(e.socketFor(gid)); err == nil {
			out = append(out, "socket "+e.socketFor(gid))
		}
	}
	e.mu.Unlock()
	for _, m := range mountsUnder(e.base) {
		out = append(out, "mount "+m)
	}
	for _, cg := range e.cgroups() {
		out = append(out, "cgroup "+cg)
	}
	return out
}

// cgroups are the containers' cgroup directories in every hierarchy.
func (e *env) cgroups() []string {
	var out []string
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/" + e.cgParent + "/*")
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			out = append(out, m)
		}
	}
	return out
}

// assertClean fails the test for anything left behind so far.
func (e *env) assertClean() {
	e.t.Helper()
	if l := e.leaks(); len(l) > 0 {
		e.t.Errorf("left behind: %s", strings.Join(l, "; "))
	}
}

// cleanup removes whatever the test left, after reporting it.
func (e *env) cleanup() {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.mu.Lock()
	created := e.created
	e.mu.Unlock()
	for _, h := range created {
		if err := e.rt.Delete(c, h.ID); err != nil {
			e.t.Errorf("cleanup: delete %s: %v", h.ID, err)
		}
	}
	e.assertClean()
	// Force what is still there away.
	for _, pid := range e.shimPids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	e.mu.Lock()
	for gid := range e.groups {
		_ = os.Remove(e.socketFor(gid))
	}
	e.mu.Unlock()
	for _, m := range mountsUnder(e.base) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	// Containers outlive a killed shim: end them (and reap those the
	// test process inherited) so their cgroups go.
	cgs := e.cgroups()
	eventually(10*time.Second, func() bool {
		left := false
		for _, cg := range cgs {
			procs, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
			for _, f := range strings.Fields(string(procs)) {
				if pid, err := strconv.Atoi(f); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if err := os.Remove(cg); err != nil && !os.IsNotExist(err) {
				left = true
			}
		}
		for _, pid := range zombieChildren(0) {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
		return !left
	})
	_ = runtime.RemoveCgroup("/" + e.cgParent)
	e.rt.Close()
	if err := os.RemoveAll(e.base); err != nil {
		e.t.Errorf("cleanup: %v", err)
	}
}

func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// logLines reads a CRI log without the timestamps.
func logLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read log: %v", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if l == "" {
			continue
		}
		ts, rest, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("log line %q: bad timestamp: %v", l, err)
		}
		out = append(out, rest)
	}
	return out
}

// eventually polls cond for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// zombieChildren lists exited, unreaped children of the test process
// that stay so for d.
func zombieChildren(d time.Duration) []int {
	find := func() []int {
		var z []int
		entries, _ := os.ReadDir("/proc")
		for _, ent := range entries {
			pid, err := strconv.Atoi(ent.Name())
			if err != nil {
				continue
			}
			st, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
			if err != nil {
				continue
			}
			f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
			if len(f) > 1 && f[0] == "Z" && f[1] == strconv.Itoa(os.Getpid()) {
				z = append(z, pid)
			}
		}
		return z
	}
	var z []int
	eventually(d, func() bool { z = find(); return len(z) == 0 })
	return z
}
