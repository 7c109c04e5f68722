// Package deathsig starts a child that must die with this process.
//
// Linux sends the parent-death signal (Pdeathsig) when the *thread* that
// forked the child exits, not the process. The Go runtime ends a thread
// whenever a goroutine exits while locked to it (as namespace helpers
// do on purpose), so a child started from an ordinary goroutine can be
// killed at a random later moment. Start forks from a thread locked for
// the child's whole life and waits on it there.
package deathsig

import (
	"fmt"
	"os/exec"
	"runtime"
	"syscall"
)

// Start sets cmd's parent-death signal to sig and starts it. The returned
// channel yields cmd.Wait's result once the child has exited.
func Start(cmd *exec.Cmd, sig syscall.Signal) (<-chan error, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = sig
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return done, nil
}
