package runtime

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// A process in a PID namespace of its own is not the daemon's to adopt
// from; one in ours, or one that can't be looked at, is.
func TestInDaemonPIDNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a new PID namespace")
	}
	if !inDaemonPIDNamespace(os.Getpid()) {
		t.Error("the daemon itself is not in its PID namespace")
	}
	if !inDaemonPIDNamespace(1 << 30) {
		t.Error("a PID that does not exist is not treated as ours")
	}
	for _, tc := range []struct {
		flags uintptr
		want  bool
	}{{0, true}, {syscall.CLONE_NEWPID, false}} {
		cmd := exec.Command("sleep", "10")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: tc.flags}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := inDaemonPIDNamespace(cmd.Process.Pid)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if got != tc.want {
			t.Errorf("clone flags %#x: in the daemon's PID namespace = %v, want %v", tc.flags, got, tc.want)
		}
	}
}
