package deathsig

import (
	"errors"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// TestSurvivesThreadExit starts children, ends locked threads around
// them (as namespace helpers do), then stops each child with SIGTERM: it
// must die of that SIGTERM, not of an earlier parent-death SIGKILL, and
// its wait status must come through. Which thread the runtime ends is not
// ours to pick, so a plain cmd.Start does not reliably fail here;
// internal/vmshim/vm's TestBootNetwork is where that bug showed (qemu
// killed after the first probe from a netns thread).
func TestSurvivesThreadExit(t *testing.T) {
	for round := 0; round < 30; round++ {
		cmd := exec.Command("sleep", "30")
		done, err := Start(cmd, syscall.SIGKILL)
		if err != nil {
			t.Fatal(err)
		}
		waited := false
		t.Cleanup(func() {
			if !waited {
				_ = cmd.Process.Kill()
				<-done
			}
		})
		exited := make(chan struct{})
		for i := 0; i < 20; i++ {
			go func() {
				defer func() { exited <- struct{}{} }()
				runtime.LockOSThread() // exits locked: the runtime ends the thread
			}()
		}
		for i := 0; i < 20; i++ {
			<-exited
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err = <-done
		waited = true
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("round %d: wait: %v", round, err)
		}
		if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
			t.Fatalf("round %d: child ended by %v, want our SIGTERM: a thread exit killed it", round, ws)
		}
	}
}
