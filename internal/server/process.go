package server

import (
	"os"
	"strings"
	"syscall"

	"github.com/cradle-runtime/cradle/internal/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// EnableSubreaper makes the daemon the parent of orphaned conmon monitors,
// so it can reap them promptly instead of leaving zombies to a slow PID 1.
func EnableSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reapConmon waits for one monitor process. Waiting on a specific PID never
// steals the status of children that os/exec waits for.
func reapConmon(pid int) {
	if pid <= 0 {
		return
	}
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return
		}
	}
}

func rlimit(u config.Ulimit) specs.POSIXRlimit {
	return specs.POSIXRlimit{Type: u.Type(), Soft: u.Soft, Hard: u.Hard}
}

// failpoint kills the daemon at a named step when a test asked for it, to
// prove a crash there leaves recoverable state. Tests set
// CRADLE_TEST_FAILPOINTS to a comma-separated list of names.
func failpoint(name string) {
	fps := os.Getenv("CRADLE_TEST_FAILPOINTS")
	if fps == "" {
		return
	}
	for _, f := range strings.Split(fps, ",") {
		if f == name {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
}
