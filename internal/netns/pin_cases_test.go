package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

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
