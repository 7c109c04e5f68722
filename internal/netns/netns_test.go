package netns

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
