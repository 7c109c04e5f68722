package netns

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// runPodInit is the PID holder: PID 1 of the pod's PID namespace, as pause
// or catatonit would be. It reaps the orphans reparented to it, ignores
// every signal but SIGTERM and SIGINT, which end it (and so the PID
// namespace), and reports "ok" on stdout once it is set up.
func runPodInit() int {
	if err := setupPodInit(); err != nil {
		fmt.Printf("error: %v\n", err)
		return 1
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	// Everything else a process can be sent: ignored, as by pause.
	signal.Ignore(unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE,
		unix.SIGALRM, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGVTALRM,
		unix.SIGPROF, unix.SIGWINCH, unix.SIGIO, unix.SIGPWR, unix.SIGSYS, unix.SIGXCPU, unix.SIGXFSZ)
	reap()
	fmt.Println("ok")
	_ = os.Stdout.Close()
	for s := range sigs {
		if s == unix.SIGTERM || s == unix.SIGINT {
			return 0
		}
		reap()
	}
	return 0
}

// setupPodInit confines the holder: its root is the empty directory it was
// started in (which the daemon then removes), and it is not dumpable, so a
// process of the pod gets nothing of the host through /proc/1.
func setupPodInit() error {
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("set not dumpable: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir: %w", err)
	}
	if os.Getpid() != 1 {
		return fmt.Errorf("not PID 1 of a new PID namespace (PID %d)", os.Getpid())
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
