package network

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// hungNetwork returns a Manager whose only plugin never answers.
func hungNetwork(t *testing.T) *Manager {
	t.Helper()
	base := t.TempDir()
	confDir, pluginDir := filepath.Join(base, "conf"), filepath.Join(base, "bin")
	for _, d := range []string{confDir, pluginDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// exec, so that killing the plugin closes its output and libcni returns.
	if err := os.WriteFile(filepath.Join(pluginDir, "hang"), []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion": "1.1.0", "name": "hung", "plugins": [{"type": "hang"}]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-hung.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{ConfDir: confDir, PluginDirs: []string{pluginDir}, CacheDir: filepath.Join(base, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	if err := m.Ready(); err != nil {
		t.Fatal(err)
	}
	return m
}

func setTimeouts(t *testing.T, cni, gc time.Duration) {
	oldCNI, oldGC := cniTimeout, gcTimeout
	cniTimeout, gcTimeout = cni, gc
	t.Cleanup(func() { cniTimeout, gcTimeout = oldCNI, oldGC })
}

// within fails unless call returns an error within limit.
func within(t *testing.T, limit time.Duration, name string, call func() error) {
	t.Helper()
	start := time.Now()
	err := call()
	if took := time.Since(start); took > limit {
		t.Errorf("%s took %v, want under %v", name, took, limit)
	}
	if err == nil {
		t.Errorf("%s succeeded with a hung plugin", name)
	}
	t.Logf("%s: %v", name, err)
}

// Every libcni call is bounded by the package's own timeouts, whatever
// context the caller passes.
func TestHungPluginIsCutOff(t *testing.T) {
	setTimeouts(t, 200*time.Millisecond, 200*time.Millisecond)
	m := hungNetwork(t)
	ctx := context.Background()
	// ADD, then the DEL that cleans up after it: two bounded calls.
	within(t, 5*time.Second, "Setup", func() error { _, err := m.Setup(ctx, &Pod{ID: "a"}); return err })
	within(t, 5*time.Second, "Teardown", func() error { return m.Teardown(ctx, &Pod{ID: "a"}, nil) })
	within(t, 5*time.Second, "GC", func() error { return m.GC(ctx, nil) })
}

// A caller's deadline shorter than the bound still applies.
func TestCallerDeadlineApplies(t *testing.T) {
	setTimeouts(t, time.Minute, time.Minute)
	m := hungNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	within(t, 5*time.Second, "Teardown", func() error { return m.Teardown(ctx, &Pod{ID: "a"}, nil) })
	within(t, 5*time.Second, "GC", func() error { return m.GC(ctx, nil) })
}
