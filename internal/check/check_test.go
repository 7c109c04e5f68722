package check

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-runtime/cradle/internal/config"
)

func find(rs []Result, name string) (Result, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// A missing runtime or conmon is fatal and says how to fix it; a missing
// CNI config is only a warning (hostNetwork pods still run).
func TestRunReportsMissingPartsWithFixes(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	h := cfg.Runtime.Handlers["runc"]
	h.Path = filepath.Join(dir, "no-runc")
	cfg.Runtime.Handlers["runc"] = h
	cfg.Runtime.Conmon = filepath.Join(dir, "no-conmon")
	cfg.Network.CNIConfDir = filepath.Join(dir, "net.d")
	rs := Run(cfg)
	for _, name := range []string{"runtime runc", "conmon", "CNI plugins", "CNI config", "cgroup mode", "overlay", "network namespaces", "seccomp"} {
		if _, ok := find(rs, name); !ok {
			t.Errorf("no %q check", name)
		}
	}
	for _, name := range []string{"runtime runc", "conmon"} {
		r, _ := find(rs, name)
		if r.OK || !r.Fatal || r.Fix == "" || !strings.Contains(r.String(), "FAIL") || !strings.Contains(r.String(), "fix:") {
			t.Errorf("%s: %+v; want a fatal failure with a fix", name, r)
		}
	}
	r, _ := find(rs, "CNI config")
	if r.OK || r.Fatal || !strings.HasPrefix(r.String(), "WARN") {
		t.Errorf("CNI config: %+v; want a warning", r)
	}
}
