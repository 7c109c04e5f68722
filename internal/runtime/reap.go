package runtime

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// EnableSubreaper makes the daemon the parent of orphaned monitors and of
// the processes execs leave behind, so it can reap them promptly instead of
// leaving zombies to a slow PID 1.
func EnableSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// ReapChild waits for one child, typically a monitor that daemonized under
// the subreaper. Waiting on a specific PID never steals the status of
// children that os/exec waits for.
func ReapChild(pid int) {
	if pid > 0 {
		Reap(pid)
	}
}

// ProcessStart returns a process's start time in clock ticks, which tells
// a live monitor from a reused PID.
func ProcessStart(pid int) (uint64, error) {
	st, ok := readStat(pid)
	switch {
	case !ok:
		return 0, fmt.Errorf("process %d: no readable /proc/%d/stat", pid, pid)
	case st.state == 'Z' || st.state == 'X':
		return 0, fmt.Errorf("process %d is a zombie", pid)
	}
	return st.start, nil
}

// Alive reports whether p is still the same running process.
func (p Process) Alive() bool {
	if p.Pid <= 0 {
		return false
	}
	start, err := ProcessStart(p.Pid)
	return err == nil && (p.Start == 0 || start == p.Start)
}

// WaitExited waits until pid has exited, without reaping it. When pid is
// not our child (the daemon is not a subreaper) it polls /proc instead.
func WaitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			slog.Warn("exec process is not the daemon's child; its exit code is lost", "pid", pid)
			for Running(pid) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		return err
	}
}

// Reap collects pid's exit status: the exit code, or 128+signal.
func Reap(pid int) int {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1
		}
		break
	}
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return -1
}

// procStat is what the process-tree walks need from /proc/PID/stat.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
	start           uint64 // start time in clock ticks since boot
}

// readStat reads /proc/PID/stat: the state, parent, group, session and
// start time.
func readStat(pid int) (procStat, bool) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procStat{}, false
	}
	st, err := p.Stat()
	if err != nil || st.State == "" {
		return procStat{}, false
	}
	return procStat{state: st.State[0], ppid: st.PPID, pgrp: st.PGRP, sid: st.Session, start: st.Starttime}, true
}

// Running reports whether pid is alive and not a zombie.
func Running(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// KillTree SIGKILLs an exec process and all it started. The runtime makes
// the exec a session and group leader, so one group kill gets the usual
// tree at once; processes that moved to a group of their own are found
// by session or by parentage.
func KillTree(root int) {
	_ = unix.Kill(-root, unix.SIGKILL)
	_ = unix.Kill(root, unix.SIGKILL)
	for round := 0; round < 20; round++ {
		victims := execTree(root)
		if len(victims) == 0 {
			return
		}
		for _, pid := range victims {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// execTree lists the live processes in root's group or session, or below it.
func execTree(root int) []int {
	stats := map[int]procStat{}
	forEachProc(func(pid int, st procStat) { stats[pid] = st })
	var out []int
	for pid, st := range stats {
		if pid == root || st.state == 'Z' || st.state == 'X' {
			continue
		}
		if st.pgrp == root || st.sid == root || descends(stats, pid, root) {
			out = append(out, pid)
		}
	}
	return out
}

func descends(stats map[int]procStat, pid, root int) bool {
	for depth := 0; depth < 256 && pid > 1; depth++ {
		pid = stats[pid].ppid
		if pid == root {
			return true
		}
	}
	return false
}

// Leftovers. Processes an exec leaves behind (killed or still running) are
// reparented to the nearest subreaper in their PID namespace: in a
// container's own namespace that is its init, but with the host's PID
// namespace it is the daemon. Nothing else waits for those, so a sweeper
// reaps the zombies among the daemon's children that belong to a known
// exec session (the exec process is its session leader).
var leftovers = struct {
	sync.Mutex
	sessions map[int]bool // exec session IDs with adopted processes
	sweeping bool
}{sessions: map[int]bool{}}

const sweepEvery = 2 * time.Second

// AdoptLeftovers registers root's session if the daemon adopted any of
// its processes. root must be exited but not reaped yet.
func AdoptLeftovers(root int) {
	if !inDaemonPIDNamespace(root) {
		// Orphans in a container's own PID namespace go to its init (or
		// the pod's PID holder), never to the daemon: no /proc walk.
		return
	}
	self := os.Getpid()
	found := false
	forEachProc(func(pid int, st procStat) {
		if pid != root && st.sid == root && st.ppid == self {
			found = true
		}
	})
	if !found {
		return
	}
	leftovers.Lock()
	defer leftovers.Unlock()
	leftovers.sessions[root] = true
	if !leftovers.sweeping {
		leftovers.sweeping = true
		go sweepLeftovers()
	}
}

// inDaemonPIDNamespace reports whether pid (exited, not reaped) is in the
// daemon's PID namespace; when that can't be told, it says yes.
func inDaemonPIDNamespace(pid int) bool {
	var self, other unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &self) != nil || unix.Stat("/proc/"+strconv.Itoa(pid)+"/ns/pid", &other) != nil {
		return true
	}
	return self.Ino == other.Ino && self.Dev == other.Dev
}

// sweepLeftovers reaps adopted zombies until no registered session has a
// process left.
func sweepLeftovers() {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		if !sweepOnce() {
			return
		}
		<-t.C
	}
}

// sweepOnce reaps what it can and forgets sessions that are gone. It
// reports whether any session remains (and stops the sweeper if not).
func sweepOnce() bool {
	self := os.Getpid()
	leftovers.Lock()
	defer leftovers.Unlock()
	alive := map[int]bool{}
	forEachProc(func(pid int, st procStat) {
		if !leftovers.sessions[st.sid] || pid == st.sid {
			return // the leader is reaped by its exec's wait
		}
		alive[st.sid] = true
		if st.ppid == self && st.state == 'Z' {
			var ws unix.WaitStatus
			_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		}
	})
	for sid := range leftovers.sessions {
		if !alive[sid] {
			delete(leftovers.sessions, sid)
		}
	}
	if len(leftovers.sessions) == 0 {
		leftovers.sweeping = false
		return false
	}
	return true
}

// forEachProc calls fn for every process in /proc.
func forEachProc(fn func(pid int, st procStat)) {
	procs, err := procfs.AllProcs()
	if err != nil {
		return
	}
	for _, p := range procs {
		if st, ok := readStat(p.PID); ok {
			fn(p.PID, st)
		}
	}
}
