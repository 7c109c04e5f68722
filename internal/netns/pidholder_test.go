package netns

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseStat(t *testing.T) {
	// The command may hold spaces and ')'; the start time is field 22.
	line := "42 (a) b) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n"
	state, start, err := parseStat(line)
	if err != nil || state != "S" || start != 987654 {
		t.Fatalf("parseStat = %q, %d, %v; want S, 987654", state, start, err)
	}
	for _, bad := range []string{"", "42 (x S 1", "42 (x) S 1 2 3"} {
		if _, _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

// TestPIDHolder starts a holder in a sandbox's pinned namespaces: it is
// PID 1 of a new PID namespace in the pod's network namespace, ignores
// the signals pause ignores; Stop kills it (idempotently), and a sweep kills a
// forgotten one.
func TestPIDHolder(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	host := hostNS(t)
	m := NewManager(netDir, dir, filepath.Join(t.TempDir(), "owned"))
	id := uniqueID(t)
	pins, err := m.Pin(Request{ID: id, Kinds: AllKinds(), Hostname: "held"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(id, pins) })
	h, err := m.StartPIDHolder(id, pins, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.StopPIDHolder(id) })
	for kind, pin := range map[string]string{"net": pins.Net, "uts": pins.UTS, "ipc": pins.IPC} {
		var a, b unix.Stat_t
		if err := unix.Stat("/proc/"+strconv.Itoa(h.Pid)+"/ns/"+kind, &a); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(pin, &b); err != nil {
			t.Fatal(err)
		}
		if a.Ino != b.Ino {
			t.Errorf("holder is not in the pod's %s namespace", kind)
		}
	}
	self, _ := os.Readlink("/proc/self/ns/pid")
	if held, _ := os.Readlink(h.NSPath()); held == "" || held == self {
		t.Errorf("holder PID namespace %q, the test's %q", held, self)
	}
	if again, err := m.StartPIDHolder(id, pins, ""); err != nil || again != h {
		t.Errorf("second StartPIDHolder = %+v, %v; want the running %+v", again, err, h)
	}
	// The threads that started it went back to the host's namespaces.
	checkThreadsInHostNS(t, host)
	// It ignores what pause ignores, and handles what ends or concerns it.
	ign, caught := sigMasks(t, h.Pid)
	for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGPIPE} {
		if ign&(1<<(sig-1)) == 0 {
			t.Errorf("holder does not ignore %v", sig)
		}
	}
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGCHLD} {
		if caught&(1<<(sig-1)) == 0 {
			t.Errorf("holder does not handle %v", sig)
		}
	}
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.WaitExit(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitExit with a live holder and a cancelled context = %v", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- h.WaitExit(context.Background()) }()
	if err := m.StopPIDHolder(id); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("WaitExit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("WaitExit did not return after the holder was killed")
	}
	if err := h.WaitExit(context.Background()); err != nil {
		t.Errorf("WaitExit on an exited holder: %v", err)
	}
	if _, ok := m.PIDHolderOf(id); ok || h.alive() {
		t.Errorf("holder still runs after StopPIDHolder")
	}
	if err := m.StopPIDHolder(id); err != nil {
		t.Errorf("second StopPIDHolder: %v", err)
	}

	// In a cgroup of its own, and forgotten by the daemon: the sweep kills
	// it, removes its cgroup and releases the pins.
	cg := "/cradle-unit-" + id
	h, err = m.StartPIDHolder(id, pins, cg)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(h.Pid) + "/cgroup"); !strings.Contains(string(b), ":"+cg+"\n") {
		t.Errorf("holder is not in cgroup %s: %s", cg, b)
	}
	m.Sweep(func(string) bool { return false })
	if h.alive() {
		t.Errorf("sweep left the holder of a forgotten sandbox running")
	}
	if dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + cg); len(dirs) > 0 {
		t.Errorf("sweep left the holder's cgroups %v", dirs)
	}
	if _, err := os.Stat(filepath.Join(dir, id)); !os.IsNotExist(err) {
		t.Errorf("sweep left %s: %v", filepath.Join(dir, id), err)
	}
}

// A holder is refused for a pod with a user namespace, which it cannot
// join, and for an ID that is no file name.
func TestPIDHolderRefusesUserNamespace(t *testing.T) {
	m := NewManager(t.TempDir(), t.TempDir(), t.TempDir())
	if _, err := m.StartPIDHolder("x", Pins{User: "/nonexistent"}, ""); err == nil {
		t.Fatal("StartPIDHolder joined a user namespace")
	}
	if _, err := m.StartPIDHolder("../x", Pins{}, ""); err == nil {
		t.Fatal("StartPIDHolder took an ID with a slash")
	}
}

// sigMasks reads the ignored and caught signal masks of pid.
func sigMasks(t *testing.T, pid int) (ign, caught uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, ":")
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		switch k {
		case "SigIgn":
			ign = n
		case "SigCgt":
			caught = n
		}
	}
	return ign, caught
}
