package server

import (
	"os"
	"strings"
	"syscall"

	"github.com/cradle-runtime/cradle/internal/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
