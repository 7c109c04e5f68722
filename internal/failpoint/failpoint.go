// Package failpoint kills the daemon at named steps when a test asks for
// it, to prove that a crash there leaves recoverable state.
package failpoint

import (
	"os"
	"strings"
	"syscall"
)

// Hit kills the daemon at a named step when a test asked for it, to
// prove a crash there leaves recoverable state. Tests set
// CRADLE_TEST_FAILPOINTS to a comma-separated list of names.
func Hit(name string) {
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
