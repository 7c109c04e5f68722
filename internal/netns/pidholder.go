package netns

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/podinit"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"
)

// A pod that shares one PID namespace needs a process to hold it: pins
// cannot, since a PID namespace whose init died takes no new processes.
// The PID holder is a tiny init (internal/podinit) started in a new PID
// namespace and in the pod's network, IPC and UTS namespaces: a fork and an
// exec instead of a pause container under conmon and runc. It is recorded
// in <dir>/<ID>/pid-holder, with its start time against PID reuse, so that
// Stop, Remove and the startup sweep find it after a daemon restart.

const holderRecord = "pid-holder"

// holderReadyTimeout bounds the wait for a new holder's "ok".
const holderReadyTimeout = 10 * time.Second

func init() {
	reexec.Register(podinit.Arg0, func() { os.Exit(podinit.Run()) })
}

// podInitPath is the holder's binary: cmd/cradle-pod-init (C, 0.1 MiB) next
// to the daemon's binary or else in PATH; else the daemon's own binary,
// which runs the same program (podinit, in Go) when started as
// podinit.Arg0, at about 4 MiB private and 35 MiB of shared text per pod.
var podInitPath = sync.OnceValue(func() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), podinit.Arg0)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(podinit.Arg0); err == nil && filepath.IsAbs(p) {
		return p
	}
	slog.Warn("no " + podinit.Arg0 + " next to the daemon's binary or in PATH: pid holders run the daemon's binary, which takes more memory")
	return reexec.Self()
})

// PIDHolder is a running holder: its PID and its start time in clock ticks
// since boot (/proc/<pid>/stat field 22), which tells it from a later
// process that reused the PID.
type PIDHolder struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Cgroup is the holder's own cgroup (cgroupfs path), made for it and
	// removed with it; "" leaves it in the daemon's.
	Cgroup string `json:"cgroup,omitempty"`
}

// NSPath is the holder's PID namespace, for the container specs.
func (h PIDHolder) NSPath() string { return "/proc/" + strconv.Itoa(h.Pid) + "/ns/pid" }

func (m *Manager) holderPath(id string) string { return filepath.Join(m.dir, id, holderRecord) }

// StartPIDHolder starts the PID holder of sandbox id in the namespaces
// pinned at p (a "" pin keeps the daemon's) and in cgroup, a cgroupfs path
// below the pod's cgroup that it gets for itself ("" keeps the daemon's).
// It returns once the holder is PID 1 of its namespace with its signal
// handlers set. On error no holder runs and none is recorded.
func (m *Manager) StartPIDHolder(id string, p Pins, cgroup string) (_ PIDHolder, retErr error) {
	if err := validID(id); err != nil {
		return PIDHolder{}, err
	}
	if cgroup != "" && (!filepath.IsAbs(cgroup) || filepath.Clean(cgroup) != cgroup || cgroup == "/") {
		return PIDHolder{}, fmt.Errorf("pid holder cgroup %q: want a clean absolute path below /", cgroup)
	}
	if p.User != "" {
		// setns into a user namespace needs a single-threaded caller.
		return PIDHolder{}, errors.New("a PID holder cannot join a pod user namespace")
	}
	if h, ok := m.PIDHolderOf(id); ok {
		return h, nil
	}
	dir := filepath.Join(m.dir, id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return PIDHolder{}, fmt.Errorf("create pid holder directory: %w", err)
	}
	// The holder's root: an empty directory, removed once it chrooted there,
	// so /proc/1/root in the pod shows nothing of the host.
	root, err := os.MkdirTemp(dir, "root-")
	if err != nil {
		return PIDHolder{}, fmt.Errorf("create pid holder root: %w", err)
	}
	defer os.Remove(root)

	cmd := &exec.Cmd{
		Path: podInitPath(), Args: []string{podinit.Arg0, id}, Dir: root,
		Env: []string{"GOMAXPROCS=1", "GOGC=400"},
		// Its own session and no parent death signal: it must outlive the
		// daemon, whose restart finds it by its record.
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID, Setsid: true},
	}
	// A pipe of our own, not StdoutPipe: Wait, which reaps it, would close
	// that one, maybe before an error message was read.
	stdout, w, err := os.Pipe()
	if err != nil {
		return PIDHolder{}, fmt.Errorf("start pid holder: %w", err)
	}
	defer stdout.Close()
	cmd.Stdout = w
	err = startIn(cmd, p)
	w.Close()
	if err != nil {
		return PIDHolder{}, fmt.Errorf("start pid holder: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reap it while this daemon is its parent
	h := PIDHolder{Pid: cmd.Process.Pid, Cgroup: cgroup}
	defer func() {
		if retErr != nil {
			_ = cmd.Process.Kill()
			if err := h.removeCgroup(); err != nil {
				retErr = fmt.Errorf("%w (cleanup: %w)", retErr, err)
			}
			_ = removeHolderRecord(m.holderPath(id))
		}
	}()
	if h.Start, err = startTime(h.Pid); err != nil {
		return PIDHolder{}, err
	}
	// Recorded before its cgroup exists, so that a crash leaves nothing
	// the sweep does not know of. It runs nothing before it is ready.
	if err := writeHolder(m.holderPath(id), h); err != nil {
		return PIDHolder{}, err
	}
	// Its cgroup is made while it starts up: it runs nothing of the pod's
	// before it is ready.
	joined := make(chan error, 1)
	go func() { joined <- h.joinCgroup() }()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ok" {
			err = errors.New(strings.TrimPrefix(strings.TrimSpace(line), "error: "))
		}
		ready <- err
	}()
	select {
	case err = <-ready:
		if err != nil {
			err = fmt.Errorf("pid holder of sandbox %s: %w", id, err)
		}
	case <-time.After(holderReadyTimeout):
		err = fmt.Errorf("pid holder of sandbox %s: not ready after %s", id, holderReadyTimeout)
	}
	// Before any cleanup removes the cgroup.
	if jerr := <-joined; err == nil {
		err = jerr
	}
	if err != nil {
		return PIDHolder{}, err
	}
	return h, nil
}

// startIn starts cmd from an OS thread moved into the pinned namespaces,
// which the child inherits, then moves the thread back. A thread that
// cannot go back exits locked, which ends it (unless it is the main
// thread, which Go parks).
func startIn(cmd *exec.Cmd, p Pins) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := runJoined(p, cmd.Start)
		if restored {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// runJoined runs fn on the calling, locked thread moved into the pinned
// net, IPC and UTS namespaces, and moves the thread back.
func runJoined(p Pins, fn func() error) (restored bool, err error) {
	var orig threadNamespaces
	defer orig.close()
	err = func() error {
		for _, ns := range []struct {
			kind Kind
			path string
			flag int
		}{{Net, p.Net, unix.CLONE_NEWNET}, {IPC, p.IPC, unix.CLONE_NEWIPC}, {UTS, p.UTS, unix.CLONE_NEWUTS}} {
			if ns.path == "" {
				continue
			}
			if err := orig.save(ns.kind, ns.flag); err != nil {
				return err
			}
			if err := setnsPath(ns.path, ns.flag); err != nil {
				return err
			}
		}
		return fn()
	}()
	return orig.restore(err)
}

func setnsPath(path string, flag int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, flag); err != nil {
		return fmt.Errorf("join namespace %s: %w", path, err)
	}
	return nil
}

// PIDHolderOf returns sandbox id's recorded holder if it still runs.
func (m *Manager) PIDHolderOf(id string) (PIDHolder, bool) {
	if validID(id) != nil {
		return PIDHolder{}, false
	}
	h, err := readHolder(m.holderPath(id))
	if err != nil {
		return PIDHolder{}, false
	}
	return h, h.alive()
}

// StopPIDHolder kills sandbox id's holder, and with it every process of
// its PID namespace, waits until it is gone, and drops its record.
// Idempotent: no record, or a holder that already exited, is success.
func (m *Manager) StopPIDHolder(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	path := m.holderPath(id)
	h, err := readHolder(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		// Records are renamed into place, so this is no record of ours.
		return removeHolderRecord(path)
	}
	if err := h.kill(); err != nil {
		return fmt.Errorf("stop pid holder of sandbox %s: %w", id, err)
	}
	if err := h.removeCgroup(); err != nil {
		return fmt.Errorf("stop pid holder of sandbox %s: %w", id, err)
	}
	return removeHolderRecord(path)
}

func removeHolderRecord(path string) error {
	for _, p := range []string{path, path + ".tmp"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove pid holder record: %w", err)
		}
	}
	// The sandbox's pin directory, once nothing else is in it.
	err := os.Remove(filepath.Dir(path))
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("remove pid holder directory: %w", err)
	}
	return nil
}

// kill sends SIGKILL through a pidfd, opened and then checked against the
// start time, so a reused PID is never signalled, and waits for the exit.
func (h PIDHolder) kill() error {
	fd, err := unix.PidfdOpen(h.Pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", h.Pid, err)
	}
	defer unix.Close(fd)
	if !h.alive() {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %d: %w", h.Pid, err)
	}
	// A pidfd polls readable once the process exited.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(holderReadyTimeout)
	for {
		n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds()))
		if err == nil && n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for %d: %w", h.Pid, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d still runs %s after SIGKILL", h.Pid, holderReadyTimeout)
		}
	}
}

// WaitExit returns once the holder exited, or with ctx's error. It takes
// no OS thread while it waits: the pidfd is polled by the runtime's
// netpoller.
func (h PIDHolder) WaitExit(ctx context.Context) error {
	fd, err := unix.PidfdOpen(h.Pid, unix.PIDFD_NONBLOCK)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", h.Pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	if !h.alive() { // checked once the pidfd pins the process
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("pidfd %d: %w", h.Pid, err)
	}
	done := make(chan error, 1)
	go func() {
		polled := false
		// Called again once the pidfd is readable, which it is on exit.
		done <- rc.Read(func(uintptr) bool {
			ready := polled
			polled = true
			return ready
		})
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = f.Close()
		<-done
		return ctx.Err()
	}
}

// alive: the PID still runs (not a zombie) and is the process recorded.
func (h PIDHolder) alive() bool {
	if h.Pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(h.Pid) + "/stat")
	if err != nil {
		return false
	}
	state, start, err := parseStat(string(b))
	return err == nil && start == h.Start && state != "Z" && state != "X"
}

func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read start time of %d: %w", pid, err)
	}
	_, start, err := parseStat(string(b))
	return start, err
}

// parseStat returns the state and start time from a /proc/<pid>/stat line,
// whose second field (the command) may hold spaces and parentheses.
func parseStat(s string) (state string, start uint64, err error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, errors.New("malformed /proc stat: no command")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); the start time is field 22.
	if len(f) < 20 {
		return "", 0, errors.New("malformed /proc stat: too few fields")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("malformed /proc stat start time: %w", err)
	}
	return f[0], start, nil
}

func readHolder(path string) (PIDHolder, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PIDHolder{}, err
	}
	var h PIDHolder
	if err := json.Unmarshal(b, &h); err != nil {
		return PIDHolder{}, fmt.Errorf("decode %s: %w", path, err)
	}
	return h, nil
}

func writeHolder(path string, h PIDHolder) error {
	b, err := json.Marshal(h)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record pid holder: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("record pid holder: %w", err)
	}
	return nil
}

func (h PIDHolder) cgroupManager() (cgroups.Manager, error) {
	return manager.New(&cgroups.Cgroup{Path: h.Cgroup, Resources: &cgroups.Resources{}})
}

// joinCgroup creates the holder's cgroup in every hierarchy and moves it in.
func (h PIDHolder) joinCgroup() error {
	if h.Cgroup == "" {
		return nil
	}
	mgr, err := h.cgroupManager()
	if err != nil {
		return fmt.Errorf("pid holder cgroup %s: %w", h.Cgroup, err)
	}
	if err := mgr.Apply(h.Pid); err != nil {
		return fmt.Errorf("move pid holder into cgroup %s: %w", h.Cgroup, err)
	}
	return nil
}

// removeCgroup removes the holder's cgroup once it is empty. Idempotent.
func (h PIDHolder) removeCgroup() error {
	if h.Cgroup == "" {
		return nil
	}
	mgr, err := h.cgroupManager()
	if err != nil {
		return fmt.Errorf("pid holder cgroup %s: %w", h.Cgroup, err)
	}
	if err := mgr.Destroy(); err != nil {
		return fmt.Errorf("remove pid holder cgroup %s: %w", h.Cgroup, err)
	}
	return nil
}
