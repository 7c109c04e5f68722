package netns

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create namespaces and mounts")
	}
}

// testDirs returns a NetDir and Dir under a fresh temp dir and, since Pin
// turns both into shared self-bind mounts, unmounts them before the temp
// dir is removed.
func testDirs(t *testing.T) (netDir, dir string) {
	t.Helper()
	base := t.TempDir()
	netDir, dir = filepath.Join(base, "netns"), filepath.Join(base, "ns")
	t.Cleanup(func() {
		for _, d := range []string{netDir, dir} {
			for i := 0; i < 8; i++ {
				if unix.Unmount(d, unix.MNT_DETACH) != nil {
					break
				}
			}
		}
	})
	return netDir, dir
}

func uniqueID(t *testing.T) string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), time.Now().UnixNano())
}

func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// mountsUnder returns mount points in /proc/self/mountinfo that contain s.
func mountsUnder(t *testing.T, s string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.Contains(fields[4], s) {
			out = append(out, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// nsMounts returns the nsfs mounts whose mount point contains s.
func nsMounts(t *testing.T, s string) []string {
	var out []string
	for _, l := range mountsUnder(t, s) {
		if strings.Contains(l, " - nsfs ") {
			out = append(out, l)
		}
	}
	return out
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func enter(t *testing.T, p Pins, script string) string {
	t.Helper()
	return run(t, "nsenter", "--net="+p.Net, "--ipc="+p.IPC, "--uts="+p.UTS, "sh", "-c", script)
}

func nsID(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// checkThreadsInHostNS fails if any thread of this process is left in a
// namespace other than the ones recorded in want.
func checkThreadsInHostNS(t *testing.T, want map[Kind]string) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		for k, w := range want {
			got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", string(k)))
			if errors.Is(err, os.ErrNotExist) {
				continue // thread exited meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != w {
				t.Errorf("thread %s is in %s, want %s", task.Name(), got, w)
			}
		}
	}
}

func hostNS(t *testing.T) map[Kind]string {
	t.Helper()
	m := map[Kind]string{}
	for _, k := range AllKinds() {
		l, err := os.Readlink("/proc/self/ns/" + string(k))
		if err != nil {
			t.Fatal(err)
		}
		m[k] = l
	}
	return m
}

// opposite returns a 0/1 value that differs from the host's, so setting it
// in the pod would be visible on the host if it leaked.
func opposite(hostVal string) string {
	if hostVal == "1" {
		return "0"
	}
	return "1"
}

func TestPinUnpin(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	host := hostNS(t)
	hostFwd := readTrim(t, "/proc/sys/net/ipv4/ip_forward")
	hostShm := readTrim(t, "/proc/sys/kernel/shmmax")
	hostName, _ := os.Hostname()
	fwd := opposite(hostFwd)
	if hostShm == "12345" {
		t.Fatal("host shmmax is already the test value")
	}

	id := uniqueID(t)
	req := Request{
		ID: id, NetDir: netDir, Dir: dir, Kinds: AllKinds(), Hostname: "pod-a",
		Sysctls: map[string]string{"net.ipv4.ip_forward": fwd, "kernel.shmmax": "12345"},
	}
	pins, err := Pin(req)
	if err != nil {
		t.Fatal(err)
	}
	want := Pins{
		Net: filepath.Join(netDir, "cradle-"+id),
		IPC: filepath.Join(dir, id, "ipc"),
		UTS: filepath.Join(dir, id, "uts"),
	}
	if pins != want || PathsFor(req) != want {
		t.Fatalf("Pin = %+v, PathsFor = %+v, want %+v", pins, PathsFor(req), want)
	}
	for _, p := range pins.paths() {
		if !IsNSFS(p) {
			t.Errorf("%s is not an nsfs mount", p)
		}
		if len(nsMounts(t, p)) != 1 {
			t.Errorf("%s: want one nsfs mount, mountinfo has %q", p, nsMounts(t, p))
		}
	}
	for k, p := range map[Kind]string{Net: pins.Net, IPC: pins.IPC, UTS: pins.UTS} {
		if nsID(t, p) == nsID(t, "/proc/self/ns/"+string(k)) {
			t.Errorf("%s pin is the host's %s namespace", p, k)
		}
	}

	// The sysctls were written through /proc/sys from the unshared thread:
	// the host must not see them, the pinned namespaces must.
	if got := readTrim(t, "/proc/sys/net/ipv4/ip_forward"); got != hostFwd {
		t.Errorf("host ip_forward changed to %s", got)
	}
	if got := readTrim(t, "/proc/sys/kernel/shmmax"); got != hostShm {
		t.Errorf("host shmmax changed to %s", got)
	}
	if got, _ := os.Hostname(); got != hostName {
		t.Errorf("host hostname changed to %s", got)
	}
	out := enter(t, pins, "hostname; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax")
	if want := "pod-a\n" + fwd + "\n12345\n"; out != want {
		t.Errorf("inside the pod namespaces got %q, want %q", out, want)
	}
	checkThreadsInHostNS(t, host)

	ns, err := vns.GetFromPath(pins.Net)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo is not up in the pod netns: %v", lo.Attrs().Flags)
	}
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 {
		t.Errorf("pod netns has %d links, want only lo", len(links))
	}

	if ids, err := List(netDir, dir); err != nil || len(ids) != 1 || ids[0] != id {
		t.Errorf("List = %q, %v; want [%s]", ids, err, id)
	}

	if err := UnpinAll(pins); err != nil {
		t.Fatal(err)
	}
	for _, p := range pins.paths() {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", p, err)
		}
		if m := mountsUnder(t, p); len(m) != 0 {
			t.Errorf("mountinfo still has %q", m)
		}
	}
	if m := nsMounts(t, filepath.Dir(netDir)); len(m) != 0 {
		t.Errorf("nsfs mounts left: %q", m)
	}
	if _, err := os.Lstat(filepath.Join(dir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sandbox namespace dir still exists: %v", err)
	}
	if ids, err := List(netDir, dir); err != nil || len(ids) != 0 {
		t.Errorf("List after UnpinAll = %q, %v", ids, err)
	}
	// Idempotent.
	if err := UnpinAll(pins); err != nil {
		t.Errorf("second UnpinAll: %v", err)
	}
	for _, p := range pins.paths() {
		if err := Unpin(p); err != nil {
			t.Errorf("second Unpin(%s): %v", p, err)
		}
	}
}

func TestUnpinPlainAndMissing(t *testing.T) {
	requireRoot(t) // umount(2) needs CAP_SYS_ADMIN even to find out
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	if IsNSFS(plain) {
		t.Error("plain file reported as nsfs")
	}
	if err := Unpin(plain); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(plain); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plain file not removed: %v", err)
	}
	if err := Unpin(filepath.Join(dir, "missing")); err != nil {
		t.Errorf("Unpin of missing path: %v", err)
	}
	if err := Unpin(filepath.Join(dir, "nodir", "missing")); err != nil {
		t.Errorf("Unpin under missing dir: %v", err)
	}
	if err := Unpin(""); err != nil {
		t.Errorf(`Unpin(""): %v`, err)
	}
	if IsNSFS(filepath.Join(dir, "missing")) {
		t.Error("missing file reported as nsfs")
	}
}

func TestUnpinStackedMounts(t *testing.T) {
	requireRoot(t)
	pin := filepath.Join(t.TempDir(), "pin")
	if err := os.WriteFile(pin, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := unix.Mount("/proc/self/ns/net", pin, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := Unpin(pin); err != nil {
		t.Fatal(err)
	}
	if m := mountsUnder(t, pin); len(m) != 0 {
		t.Errorf("mounts left: %q", m)
	}
	if _, err := os.Lstat(pin); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin not removed: %v", err)
	}
}

func TestPinFailureCleansUp(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name    string
		sysctls map[string]string
		hook    func(string) error
		wantErr string
	}{
		{name: "missing sysctl", sysctls: map[string]string{"net.ipv4.no_such_sysctl": "1"}, wantErr: `"net.ipv4.no_such_sysctl" does not exist`},
		// Global net.core.rmem_max is writable only in the initial netns
		// (and absent from child ones on older kernels).
		{name: "init_net-only sysctl", sysctls: map[string]string{"net.core.rmem_max": "4096"}, wantErr: `sysctl "net.core.rmem_max"`},
		{name: "bad value", sysctls: map[string]string{"kernel.shmmax": "12", "net.ipv4.ip_forward": "bogus"}, wantErr: `set sysctl "net.ipv4.ip_forward" to "bogus"`},
		{name: "after a mount", hook: func(pin string) error {
			if filepath.Base(pin) == "ipc" {
				return errors.New("injected")
			}
			return nil
		}, wantErr: "injected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			netDir, dir := testDirs(t)
			host := hostNS(t)
			hostFwd := readTrim(t, "/proc/sys/net/ipv4/ip_forward")
			testHookAfterMount = c.hook
			defer func() { testHookAfterMount = nil }()
			_, err := Pin(Request{ID: uniqueID(t), NetDir: netDir, Dir: dir, Kinds: AllKinds(), Hostname: "x", Sysctls: c.sysctls})
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Pin error = %v, want it to contain %q", err, c.wantErr)
			}
			t.Log(err)
			for _, d := range []string{netDir, dir} {
				ents, err := os.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				if len(ents) != 0 {
					t.Errorf("%s not empty: %v", d, ents)
				}
			}
			if m := nsMounts(t, filepath.Dir(netDir)); len(m) != 0 {
				t.Errorf("nsfs mounts left: %q", m)
			}
			if got := readTrim(t, "/proc/sys/net/ipv4/ip_forward"); got != hostFwd {
				t.Errorf("host ip_forward changed to %s", got)
			}
			checkThreadsInHostNS(t, host)
		})
	}
}

func TestPinKeepsExistingFiles(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	id := uniqueID(t)
	uts := filepath.Join(dir, id, "uts")
	if err := os.MkdirAll(filepath.Dir(uts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(uts, []byte("someone else's"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Pin(Request{ID: id, NetDir: netDir, Dir: dir, Kinds: AllKinds()})
	if !errors.Is(err, os.ErrExist) {
		t.Fatalf("Pin error = %v, want ErrExist", err)
	}
	if got := readTrim(t, uts); got != "someone else's" {
		t.Errorf("existing file clobbered: %q", got)
	}
	for _, p := range []string{filepath.Join(netDir, "cradle-"+id), filepath.Join(dir, id, "ipc")} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
}

func TestPinRejectsBadRequests(t *testing.T) {
	netDir, dir := "/nonexistent/netns", "/nonexistent/ns"
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"empty ID", Request{NetDir: netDir, Kinds: []Kind{Net}}, nil},
		{"ID with slash", Request{ID: "a/b", NetDir: netDir, Kinds: []Kind{Net}}, nil},
		{"dot-dot ID", Request{ID: "..", Dir: dir, Kinds: []Kind{IPC}}, nil},
		{"unknown kind", Request{ID: "a", Dir: dir, Kinds: []Kind{"pid"}}, nil},
		{"relative NetDir", Request{ID: "a", NetDir: "run/netns", Kinds: []Kind{Net}}, nil},
		{"missing Dir", Request{ID: "a", NetDir: netDir, Kinds: []Kind{Net, UTS}}, nil},
		{"hostname without UTS", Request{ID: "a", NetDir: netDir, Kinds: []Kind{Net}, Hostname: "h"}, nil},
		{"net sysctl with host net", Request{ID: "a", Dir: dir, Kinds: []Kind{IPC, UTS}, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, ErrHostNamespace},
		{"ipc sysctl with host ipc", Request{ID: "a", NetDir: netDir, Kinds: []Kind{Net}, Sysctls: map[string]string{"kernel.shmmax": "1"}}, ErrHostNamespace},
		{"uts sysctl with host uts", Request{ID: "a", NetDir: netDir, Kinds: []Kind{Net}, Sysctls: map[string]string{"kernel.domainname": "x"}}, ErrHostNamespace},
		{"global sysctl", Request{ID: "a", NetDir: netDir, Kinds: AllKinds(), Dir: dir, Sysctls: map[string]string{"vm.swappiness": "1"}}, ErrNotNamespaced},
		{"hostname conflict", Request{ID: "a", NetDir: netDir, Kinds: AllKinds(), Dir: dir, Hostname: "a", Sysctls: map[string]string{"kernel.hostname": "b"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Pin(c.req)
			if err == nil {
				t.Fatal("Pin succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			t.Log(err)
		})
	}
	if _, err := os.Stat("/nonexistent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rejected requests touched the filesystem: %v", err)
	}
	if p, err := Pin(Request{ID: "a"}); err != nil || p != (Pins{}) {
		t.Errorf("Pin with no kinds = %+v, %v; want nothing to do", p, err)
	}
}

// The pinned namespaces must live on after the creating thread has left
// them (or died), held only by the bind mounts.
func TestNamespacesOutliveThread(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	fwd := opposite(readTrim(t, "/proc/sys/net/ipv4/ip_forward"))
	pins, err := Pin(Request{
		ID: uniqueID(t), NetDir: netDir, Dir: dir, Kinds: AllKinds(), Hostname: "survivor",
		Sysctls: map[string]string{
			"net/ipv4/ip_forward":         fwd, // slash form
			"kernel.shmmni":               "1234",
			"fs.mqueue.msg_max":           "77",
			"kernel.domainname":           "pod.example",
			"net.ipv4.conf.lo.forwarding": fwd,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnpinAll(pins); err != nil {
			t.Error(err)
		}
	})

	// Churn threads so the one that created the namespaces is reused.
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			time.Sleep(10 * time.Millisecond)
			// Exit locked: the runtime throws this thread away.
		}()
	}
	wg.Wait()
	runtime.GC()
	time.Sleep(200 * time.Millisecond)

	// No thread of ours is in the pod namespaces: only the pins hold them.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		for k, p := range map[Kind]string{Net: pins.Net, IPC: pins.IPC, UTS: pins.UTS} {
			if l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", string(k))); err == nil {
				if id := nsID(t, p); strings.Contains(l, strings.Split(id, ":")[1]) {
					t.Errorf("thread %s still in pod %s namespace", task.Name(), k)
				}
			}
		}
	}

	out := enter(t, pins, "hostname; domainname; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/fs/mqueue/msg_max /proc/sys/net/ipv4/conf/lo/forwarding")
	want := fmt.Sprintf("survivor\npod.example\n%s\n1234\n77\n%s\n", fwd, fwd)
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestPinOnlySomeKinds(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	host := hostNS(t)
	id := uniqueID(t)
	pins, err := Pin(Request{ID: id, NetDir: netDir, Dir: dir, Kinds: []Kind{IPC},
		Sysctls: map[string]string{"kernel.msgmax": "4242"}})
	if err != nil {
		t.Fatal(err)
	}
	if pins.Net != "" || pins.UTS != "" || !IsNSFS(pins.IPC) {
		t.Fatalf("pins = %+v", pins)
	}
	if _, err := os.Stat(netDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NetDir created without a net pin: %v", err)
	}
	if out := run(t, "nsenter", "--ipc="+pins.IPC, "cat", "/proc/sys/kernel/msgmax"); out != "4242\n" {
		t.Errorf("msgmax in pod = %q", out)
	}
	checkThreadsInHostNS(t, host)
	if err := UnpinAll(pins); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("%s not empty: %v", dir, ents)
	}
}

func TestPinConcurrent(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	host := hostNS(t)
	const n = 8
	pins := make([]Pins, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pins[i], errs[i] = Pin(Request{
				ID: fmt.Sprintf("c%d", i), NetDir: netDir, Dir: dir, Kinds: AllKinds(),
				Hostname: fmt.Sprintf("pod-%d", i),
				Sysctls:  map[string]string{"kernel.shmmni": fmt.Sprint(1000 + i), "net.ipv4.ip_local_port_range": fmt.Sprintf("%d 60000", 2000+i)},
			})
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, p := range pins {
			if err := UnpinAll(p); err != nil {
				t.Error(err)
			}
		}
	})
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		out := enter(t, pins[i], "hostname; cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_local_port_range")
		if want := fmt.Sprintf("pod-%d\n%d\n%d\t60000\n", i, 1000+i, 2000+i); out != want {
			t.Errorf("sandbox %d: got %q, want %q", i, out, want)
		}
	}
	checkThreadsInHostNS(t, host)
	ids, err := List(netDir, dir)
	if err != nil || len(ids) != n {
		t.Errorf("List = %q, %v", ids, err)
	}
}

// A network pin made after another mount namespace was created must still
// show up there (CNI plugins and daemons with private mounts open it), and
// its removal must propagate too, or that copy would keep the namespace
// alive. IPC and UTS pins are only opened by the runtime, from our own mount
// namespace, so their directory is deliberately not a shared mount.
func TestPinPropagatesToOtherMountNamespaces(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	first, err := Pin(Request{ID: "first", NetDir: netDir, Dir: dir, Kinds: AllKinds()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnpinAll(first) })

	// A container-like mount namespace: a slave copy of ours.
	cmd := exec.Command("unshare", "--mount", "--propagation", "slave", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	mntNS := fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid)
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for i := 0; ; i++ {
		if l, _ := os.Readlink(mntNS); l != "" && l != self {
			break
		}
		if i > 100 {
			t.Fatal("unshare did not enter a new mount namespace")
		}
		time.Sleep(20 * time.Millisecond)
	}

	second, err := Pin(Request{ID: "second", NetDir: netDir, Dir: dir, Kinds: AllKinds()})
	if err != nil {
		t.Fatal(err)
	}
	statIn := func(p string) string {
		out, _ := exec.Command("nsenter", "--mount="+mntNS, "stat", "-f", "-c", "%T", p).CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	for _, p := range []string{second.Net} {
		if got := statIn(p); got != "nsfs" {
			t.Errorf("%s in the other mount namespace: %q, want nsfs", p, got)
		}
	}
	if err := UnpinAll(second); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{second.Net} {
		if got := statIn(p); got == "nsfs" {
			t.Errorf("%s still mounted in the other mount namespace", p)
		}
	}
}

// The real /var/run/netns, so `ip netns` interoperates; the pin is unique
// and removed again.
func TestPinVarRunNetns(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip not installed")
	}
	id := uniqueID(t)
	req := Request{ID: id, NetDir: "/var/run/netns", Kinds: []Kind{Net},
		Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "80"}}
	pins, err := Pin(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := UnpinAll(PathsFor(req)); err != nil {
			t.Error(err)
		}
		if _, err := os.Lstat(pins.Net); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", pins.Net)
		}
	})
	if !strings.Contains(run(t, "ip", "netns", "list"), "cradle-"+id) {
		t.Error("ip netns list does not show the pin")
	}
	out := run(t, "ip", "netns", "exec", "cradle-"+id, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if out != "80\n" {
		t.Errorf("ip_unprivileged_port_start in pod = %q", out)
	}
	if m := mountsUnder(t, "/netns"); !strings.Contains(strings.Join(m, "\n"), "shared:") {
		t.Errorf("/var/run/netns is not a shared mount: %q", m)
	}
}

func TestListAndPathsFor(t *testing.T) {
	requireRoot(t) // the sweep uses Unpin
	base := t.TempDir()
	netDir, dir := filepath.Join(base, "netns"), filepath.Join(base, "ns")
	if ids, err := List(netDir, dir); err != nil || len(ids) != 0 {
		t.Fatalf("List of missing dirs = %q, %v", ids, err)
	}
	for _, p := range []string{filepath.Join(netDir, "cradle-b"), filepath.Join(netDir, "other"), filepath.Join(netDir, "cradle-"), filepath.Join(dir, "a", "ipc"), filepath.Join(dir, "b", "uts")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ids, err := List(netDir, dir)
	if err != nil || strings.Join(ids, ",") != "a,b" {
		t.Fatalf("List = %q, %v; want [a b]", ids, err)
	}
	if ids, err := List("", dir); err != nil || strings.Join(ids, ",") != "a,b" {
		t.Fatalf("List without netDir = %q, %v", ids, err)
	}

	p := PathsFor(Request{ID: "b", NetDir: netDir, Dir: dir, Kinds: []Kind{UTS}})
	if p != (Pins{UTS: filepath.Join(dir, "b", "uts")}) {
		t.Fatalf("PathsFor = %+v", p)
	}
	// Sweep leftovers that are plain files (e.g. a crash before mounting).
	for _, id := range ids {
		if err := UnpinAll(PathsFor(Request{ID: id, NetDir: netDir, Dir: dir, Kinds: AllKinds()})); err != nil {
			t.Fatal(err)
		}
	}
	if ids, err := List(netDir, dir); err != nil || len(ids) != 0 {
		t.Errorf("List after sweep = %q, %v", ids, err)
	}
}

// With ID mappings, a user namespace is pinned too and owns the others:
// root in the pod is the mapped host ID, and the pod's hostname and sysctls
// were set from inside it.
func TestPinWithUserNamespace(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	m := []IDMap{{ContainerID: 0, HostID: 1000, Size: 100000}}
	pins, err := Pin(Request{ID: "userns", NetDir: netDir, Dir: dir, Kinds: []Kind{Net, IPC, UTS},
		Hostname: "pod-u", Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024"}, UIDs: m, GIDs: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnpinAll(pins) })
	for _, p := range []string{pins.User, pins.Net, pins.IPC, pins.UTS} {
		if !IsNSFS(p) {
			t.Errorf("%s is not an nsfs pin", p)
		}
	}
	out, err := exec.Command("nsenter", "--user="+pins.User, "--net="+pins.Net, "--uts="+pins.UTS, "sh", "-c",
		"cat /proc/self/uid_map; hostname; cat /proc/sys/net/ipv4/ip_unprivileged_port_start").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 5 || f[0] != "0" || f[1] != "1000" || f[2] != "100000" || f[3] != "pod-u" || f[4] != "1024" {
		t.Errorf("inside the pod: %q", out)
	}
	if err := UnpinAll(pins); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left in %s: %v", dir, ents)
	}
	for _, bad := range [][]IDMap{nil, {{ContainerID: 1, HostID: 1000, Size: 10}}, {m[0], m[0]}} {
		if err := ValidateIDMaps(bad, m); err == nil {
			t.Errorf("ValidateIDMaps(%v) accepted", bad)
		}
	}
}
