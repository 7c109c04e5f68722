package oci

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// waitExited waits until pid has exited, without reaping it. When pid is
// not our child (the daemon is not a subreaper) it polls /proc instead.
func waitExited(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			slog.Warn("exec process is not the daemon's child; its exit code is lost", "pid", pid)
			for running(pid) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		return err
	}
}

// reap collects pid's exit status: the exit code, or 128+signal.
func reap(pid int) int {
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

// procStat is what killTree needs from /proc/PID/stat.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
	start           uint64 // start time in clock ticks since boot
}

// readStat parses /proc/PID/stat: the state, parent, group, session and
// start time.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // comm may hold spaces and parens
	if i < 0 || i+2 >= len(s) {
		return procStat{}, false
	}
	// f[0] is field 3 (state); the start time is field 22.
	f := strings.Fields(s[i+2:])
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{state: f[0][0]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.pgrp, _ = strconv.Atoi(f[2])
	st.sid, _ = strconv.Atoi(f[3])
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

func running(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z' && st.state != 'X'
}

// killTree SIGKILLs an exec process and all it started. The runtime makes
// the exec a session and group leader, so one group kill gets the usual
// tree at once; processes that moved to a group of their own are found
// by session or by parentage.
func killTree(root int) {
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

// adoptLeftovers registers root's session if the daemon adopted any of
// its processes. root must be exited but not reaped yet.
func adoptLeftovers(root int) {
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
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			fn(pid, st)
		}
	}
}
