// Package podinit is the PID holder's program in Go: PID 1 of a pod's
// shared PID namespace, as pause or catatonit would be. cmd/cradle-pod-init
// is the same program in C, which netns.Manager prefers (a Go runtime costs
// about 0.6 MiB per pod); the daemon's own binary runs this one where that
// was not built.
package podinit

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Arg0 is the holder's argv[0]; its one argument is the sandbox ID, so ps
// names the pod it holds.
const Arg0 = "cradle-pod-init"

// Run reaps the orphans reparented to it and ignores every signal but
// SIGTERM and SIGINT, which end it (and so the PID namespace). It reports
// "ok" on stdout once it is set up, "error: ..." if it cannot be, and
// returns the exit code.
func Run() int {
	if err := setup(); err != nil {
		_, _ = os.Stdout.WriteString("error: " + err.Error() + "\n")
		return 1
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	// Everything else a process can be sent: ignored, as by pause.
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE,
		unix.SIGALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGVTALRM,
		unix.SIGPROF, unix.SIGWINCH, unix.SIGIO, unix.SIGPWR, unix.SIGSYS, unix.SIGXCPU, unix.SIGXFSZ)
	reap()
	_, _ = os.Stdout.WriteString("ok\n")
	_ = os.Stdout.Close()
	for s := range sigs {
		if s == unix.SIGTERM || s == unix.SIGINT {
			return 0
		}
		reap()
	}
	return 0
}

// setup confines the holder: its root is the empty directory it was
// started in (which the daemon then removes), and it is not dumpable, so a
// process of the pod gets nothing of the host through /proc/1.
func setup() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return errors.New("set not dumpable: " + err.Error())
	}
	if err := unix.Chroot("."); err != nil {
		return errors.New("chroot: " + err.Error())
	}
	if err := unix.Chdir("/"); err != nil {
		return errors.New("chdir: " + err.Error())
	}
	if os.Getpid() != 1 {
		return errors.New("not PID 1 of a new PID namespace")
	}
	return nil
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
