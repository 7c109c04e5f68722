// Package integration drives a real cradle daemon over the CRI with real
// runc, conmon, CNI plugins and a local registry. It must run as root.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	busybox    = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	pauseImage = "registry.k8s.io/pause:3.10"
)

// daemonSeq numbers daemons so each gets a network, bridge, subnet and
// cgroup parent of its own: tests never collide with each other, with a
// parallel run, or with a runtime already on the host.
var daemonSeq atomic.Int64

func repoRoot() string {
	_, f, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(f), "..", ".."))
}

func cradleBin(t *testing.T) string {
	if b := os.Getenv("CRADLE_BIN"); b != "" {
		return b
	}
	b := filepath.Join(repoRoot(), "bin", "cradle")
	if _, err := os.Stat(b); err != nil {
		t.Fatalf("cradle binary not built (%v); run make build or set CRADLE_BIN", err)
	}
	return b
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("integration tests need root")
	}
}

// daemon is one cradle process with state dirs of its own.
type daemon struct {
	t        *testing.T
	dir      string // persistent state and config
	runroot  string // short, under /run: conmon's socket paths must fit 108 bytes
	sock     string
	cniDir   string
	ipamDir  string
	logPath  string
	cfgPath  string
	env      []string
	cmd      *exec.Cmd
	conn     *grpc.ClientConn
	rt       runtimeapi.RuntimeServiceClient
	img      runtimeapi.ImageServiceClient
	netnsPre map[string]bool
	cniCtl   string // control files of the cnifault plugin

	network, bridge, subnet, cgroup string
}

type option func(*daemon)

// withEnv adds environment variables (for example failpoints) to the daemon.
func withEnv(kv ...string) option { return func(d *daemon) { d.env = append(d.env, kv...) } }

// withDefaultHandler makes the daemon's default handler another one,
// defined with withConfig.
func withDefaultHandler(name string) option {
	return func(d *daemon) {
		b, err := os.ReadFile(d.cfgPath)
		if err != nil {
			d.t.Fatal(err)
		}
		b = bytes.Replace(b, []byte(`default_handler = "runc"`), []byte(fmt.Sprintf("default_handler = %q", name)), 1)
		if err := os.WriteFile(d.cfgPath, b, 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
}

// withConfig appends raw TOML to the daemon's config file.
func withConfig(toml string) option {
	return func(d *daemon) {
		f, err := os.OpenFile(d.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			d.t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString("\n" + toml + "\n"); err != nil {
			d.t.Fatal(err)
		}
	}
}

func newDaemon(t *testing.T, opts ...option) *daemon {
	t.Helper()
	requireRoot(t)
	d := &daemon{t: t, dir: t.TempDir(), netnsPre: listNetns()}
	n, pid := daemonSeq.Add(1), os.Getpid()
	d.network = fmt.Sprintf("cradle-itest-%d-%d", pid, n)
	d.bridge = fmt.Sprintf("cit%05d%02d", pid%100000, n%100)
	d.subnet = fmt.Sprintf("10.%d.%d.0/24", 200+pid%50, n%250)
	d.cgroup = fmt.Sprintf("/cradle-itest-%d-%d", pid, n)
	rr, err := os.MkdirTemp("/run", "crdl-")
	if err != nil {
		t.Fatal(err)
	}
	d.runroot = rr
	d.sock = filepath.Join(rr, "cradle.sock")
	d.cniDir = filepath.Join(d.dir, "net.d")
	d.ipamDir = filepath.Join(d.dir, "ipam")
	d.cniCtl = filepath.Join(d.dir, "cnictl")
	d.logPath = filepath.Join(d.dir, "cradle.log")
	d.cfgPath = filepath.Join(d.dir, "cradle.toml")
	if err := os.MkdirAll(d.cniDir, 0o755); err != nil {
		t.Fatal(err)
	}
	d.writeCNIConfig()
	images := filepath.Join(repoRoot(), "test", "images")
	if dir := os.Getenv("CRADLE_TEST_IMAGES_DIR"); dir != "" {
		images = dir // registries.conf and policy.json from elsewhere
	}
	cfg := fmt.Sprintf(`listen = "unix://%s"
root = "%s"
runroot = "%s"
log_level = "debug"

[runtime]
default_handler = "runc"

[runtime.handlers.runc]
type = "oci"
path = "/usr/sbin/runc"

[network]
cni_conf_dir = "%s"
cni_plugin_dirs = ["/usr/lib/cni", "/opt/cni/bin", "%s"]

[image]
pause_image = "%s"
registries_conf = "%s"
signature_policy = "%s"

# Each daemon its own NRI socket: the default one is the host's.
[nri]
socket_path = "%s"
plugin_path = "%s"
plugin_config_path = "%s"
`, d.sock, filepath.Join(d.dir, "root"), d.runroot, d.cniDir, faultPluginDir(t), pauseImage,
		filepath.Join(images, "registries.conf"), filepath.Join(images, "policy.json"),
		d.nriSocket(), filepath.Join(d.dir, "nri", "plugins"), filepath.Join(d.dir, "nri", "conf.d"))
	if r := os.Getenv("CRADLE_TEST_RUNC"); r != "" {
		// A newer runc (hack/install-runc.sh) for what Debian's lacks.
		cfg += fmt.Sprintf("\n[runtime.handlers.runc-new]\ntype = \"oci\"\npath = %q\n", r)
	}
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(d)
	}
	// Registered first, so it runs last: after the daemon stopped, nothing
	// of this test may remain on the host.
	t.Cleanup(d.assertNoLeaks)
	d.start()
	t.Cleanup(d.stop)
	return d
}

// nriSocket is where the daemon serves NRI plugins.
func (d *daemon) nriSocket() string { return filepath.Join(d.runroot, "nri.sock") }

func (d *daemon) writeCNIConfig() {
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "%s",
  "plugins": [
    {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "dataDir": "%s", "ranges": [[{"subnet": "%s"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "cnifault", "controlDir": "%s"}
  ]
}`, d.network, d.bridge, d.ipamDir, d.subnet, d.cniCtl)
	if err := os.MkdirAll(d.cniCtl, 0o755); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.cniDir, "10-itest.conflist"), []byte(conf), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemon) start() {
	t := d.t
	t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// A drop-in directory of its own: the host's /etc/cradle/cradle.d is
	// not the test's.
	cmd := exec.Command(cradleBin(t), "serve", "--config", d.cfgPath, "--config-dir", filepath.Join(d.dir, "cradle.d"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), d.env...)
	// Its own process group: a kill -9 must not take the test with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.cmd = cmd
	conn, err := grpc.NewClient("unix://"+d.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	d.rt = runtimeapi.NewRuntimeServiceClient(conn)
	d.img = runtimeapi.NewImageServiceClient(conn)
	// Ready means answering, not just accepting: after a kill -9, a dying
	// child of the old daemon may still hold its listening socket.
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.rt.Version(c, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			d.dumpLog()
			t.Fatalf("daemon did not start serving within 60s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits; the daemon must exit 0.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			d.t.Errorf("daemon exited with %v after SIGTERM", err)
			d.dumpLog()
		}
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
		d.t.Error("daemon did not exit within 30s of SIGTERM")
	}
	d.cmd = nil
}

// kill9 kills the daemon as a crash would.
func (d *daemon) kill9() {
	if d.conn != nil {
		d.conn.Close()
	}
	_ = d.cmd.Process.Kill()
	_ = d.cmd.Wait()
	d.cmd = nil
}

// waitCrash waits for the daemon to die by itself (a failpoint).
func (d *daemon) waitCrash(timeout time.Duration) {
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		d.t.Fatal("daemon did not hit its failpoint")
	}
	if d.conn != nil {
		d.conn.Close()
	}
	d.cmd = nil
}

func (d *daemon) restart(env ...string) {
	d.stop()
	d.env = env
	d.start()
}

func (d *daemon) dumpLog() {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	d.t.Logf("daemon log (tail):\n%s", strings.Join(lines, "\n"))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// shimSockets are where this daemon's shims put their sockets, one per
// pod: containerd's shims name them by the SHA-256 of <-address>/<namespace>/
// <group ID>, and each vm handler's -address is under the daemon's runroot.
func (d *daemon) shimSockets() []string {
	handlers, _ := os.ReadDir(filepath.Join(d.runroot, "shims"))
	var out []string
	for _, h := range handlers {
		addr := filepath.Join(d.runroot, "shims", h.Name(), "containerd.sock")
		for id := range d.sandboxIDs() {
			sum := sha256.Sum256([]byte(filepath.Join(addr, "k8s.io", id)))
			out = append(out, fmt.Sprintf("/run/containerd/s/%x", sum))
		}
	}
	return out
}

func listNetns() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// leaks lists what this daemon left on the host. While it runs, its
// storage driver's home (a private bind mount onto itself) is expected.
func (d *daemon) leaks() []string {
	storageHome := filepath.Join(d.dir, "root", "storage", "overlay")
	var out []string
	mine := d.sandboxIDs()
	for n := range listNetns() {
		if !d.netnsPre[n] && mine[strings.TrimPrefix(n, "cradle-")] {
			out = append(out, "netns pin /var/run/netns/"+n)
		}
	}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && (strings.HasPrefix(fields[4], d.dir) || strings.HasPrefix(fields[4], d.runroot)) &&
				!(d.cmd != nil && fields[4] == storageHome) {
				out = append(out, "mount "+fields[4])
			}
		}
		f.Close()
	}
	if pids, _ := exec.Command("pgrep", "-f", "conmon.*"+d.runroot).Output(); len(strings.TrimSpace(string(pids))) > 0 {
		out = append(out, "conmon processes "+strings.Join(strings.Fields(string(pids)), ","))
	}
	if pids := d.holderPids(); len(pids) > 0 {
		out = append(out, fmt.Sprintf("pid holder processes %v", pids))
	}
	// Shims get -address under the daemon's runroot; their sockets go to
	// the shared /run/containerd/s.
	if pids, _ := exec.Command("pgrep", "-f", "containerd-shim.*"+d.runroot).Output(); len(strings.TrimSpace(string(pids))) > 0 {
		out = append(out, "shim processes "+strings.Join(strings.Fields(string(pids)), ","))
	}
	for _, s := range d.shimSockets() {
		if _, err := os.Lstat(s); err == nil {
			out = append(out, "shim socket "+s)
		}
	}
	// cradle-shim-vm keeps its socket, VM state and 9p share next to its
	// -address, and its qemu's arguments name them.
	for _, name := range []string{"cradle-shim-vm", "qemu-system"} {
		if pids, _ := exec.Command("pgrep", "-f", name+".*"+d.runroot).Output(); len(strings.TrimSpace(string(pids))) > 0 {
			out = append(out, name+" processes "+strings.Join(strings.Fields(string(pids)), ","))
		}
	}
	if vms, _ := filepath.Glob(filepath.Join(d.runroot, "shims", "*", "vm-*")); len(vms) > 0 {
		out = append(out, "microVM state "+strings.Join(vms, ","))
	}
	if entries, err := os.ReadDir(filepath.Join(d.ipamDir, d.network)); err == nil {
		for _, e := range entries {
			if ip := net.ParseIP(e.Name()); ip != nil {
				out = append(out, "IP allocation "+e.Name())
			}
		}
	}
	if b, err := exec.Command("ip", "-o", "link", "show", "master", d.bridge).Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		out = append(out, "veths on "+d.bridge+": "+strings.TrimSpace(string(b)))
	}
	// Every mounted hierarchy: which controllers share one differs by host.
	for _, h := range cgroupHierarchies() {
		entries, _ := os.ReadDir(filepath.Join(h, d.cgroup))
		for _, e := range entries {
			if e.IsDir() {
				out = append(out, "cgroup "+filepath.Join(h, d.cgroup, e.Name()))
			}
		}
	}
	return out
}

// holderPids are the running PID holders ("cradle-pod-init <sandbox ID>")
// of this daemon's sandboxes.
func (d *daemon) holderPids() []int {
	mine := d.sandboxIDs()
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) == 2 && args[0] == "cradle-pod-init" && mine[args[1]] {
			out = append(out, pid)
		}
	}
	return out
}

// sandboxIDs are the sandboxes this daemon ever recorded, from its log:
// other tests' daemons may pin namespaces in /var/run/netns concurrently.
func (d *daemon) sandboxIDs() map[string]bool {
	b, _ := os.ReadFile(d.logPath)
	ids := map[string]bool{}
	for _, m := range sandboxLogRe.FindAllStringSubmatch(string(b), -1) {
		ids[m[1]] = true
	}
	return ids
}

var sandboxLogRe = regexp.MustCompile(`msg="sandbox record created" sandbox=([0-9a-f]{64})`)

// assertNoLeaks fails the test for anything left behind, then removes it
// so that one failure does not cascade into the next test.
func (d *daemon) assertNoLeaks() {
	if d.cmd != nil {
		d.stop()
	}
	for _, l := range d.leaks() {
		d.t.Errorf("leaked: %s", l)
	}
	// Force the host clean whatever happened.
	mine := d.sandboxIDs()
	_ = exec.Command("pkill", "-9", "-f", "conmon.*"+d.runroot).Run()
	_ = exec.Command("pkill", "-9", "-f", "containerd-shim.*"+d.runroot).Run()
	for _, pid := range d.holderPids() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	_ = exec.Command("pkill", "-9", "-f", "cradle-shim-vm.*"+d.runroot).Run()
	_ = exec.Command("pkill", "-9", "-f", "qemu-system.*"+d.runroot).Run()
	for _, s := range d.shimSockets() {
		_ = os.Remove(s)
	}
	for n := range listNetns() {
		if !d.netnsPre[n] && mine[strings.TrimPrefix(n, "cradle-")] {
			_ = syscall.Unmount("/var/run/netns/"+n, syscall.MNT_DETACH)
			_ = os.Remove("/var/run/netns/" + n)
		}
	}
	unmountUnder(d.dir, d.runroot)
	_ = os.RemoveAll(d.runroot)
	_ = exec.Command("ip", "link", "del", d.bridge).Run()
	for _, h := range cgroupHierarchies() {
		p := filepath.Join(h, d.cgroup)
		entries, _ := os.ReadDir(p)
		for _, e := range entries {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(p, e.Name()))
			}
		}
		_ = os.Remove(p)
	}
}

// unmountUnder detaches every mount below the given directories, deepest
// first.
func unmountUnder(dirs ...string) {
	out, _ := exec.Command("sh", "-c", "grep -E '"+strings.Join(dirs, "|")+"' /proc/self/mountinfo | awk '{print $5}' | sort -r").Output()
	for _, m := range strings.Fields(string(out)) {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

var (
	faultOnce sync.Once
	faultDir  string
	faultErr  error
)

// faultPluginDir builds the cnifault test plugin once per test binary.
func faultPluginDir(t *testing.T) string {
	faultOnce.Do(func() {
		faultDir, faultErr = os.MkdirTemp("", "cradle-cnifault-")
		if faultErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(faultDir, "cnifault"), filepath.Join(repoRoot(), "test", "cnifault")).CombinedOutput()
		if err != nil {
			faultErr = fmt.Errorf("build cnifault: %v: %s", err, out)
		}
	})
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	return faultDir
}

// cniControl creates or removes a cnifault control file (fail-ADD, hang-DEL, ...).
func (d *daemon) cniControl(name string, on bool) {
	p := filepath.Join(d.cniCtl, name)
	if on {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			d.t.Fatal(err)
		}
		return
	}
	_ = os.Remove(p)
}

// cniCalls returns the plugin's call log lines.
func (d *daemon) cniCalls() []string {
	b, _ := os.ReadFile(filepath.Join(d.cniCtl, "calls"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// cgroupHierarchies are the mounted cgroup hierarchies (and the root, for
// a unified-only host).
func cgroupHierarchies() []string {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	return append(hs, "/sys/fs/cgroup")
}
