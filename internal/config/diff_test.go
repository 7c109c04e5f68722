package config

import (
	"testing"
	"time"
)

func TestDiff(t *testing.T) {
	a := Default()
	if got := Diff(a, Default()); len(got) != 0 {
		t.Fatalf("defaults differ from themselves: %v", got)
	}
	b := a.Clone()
	b.LogLevel = LogLevelDebug
	b.Image.PauseImage = "example.com/pause:1"
	b.NRI.RequestTimeout = Duration(3 * time.Second)
	b.Runtime.DefaultSysctls = nil // nil and empty are one setting
	b.Runtime.Handlers["kata"] = Handler{Type: HandlerTypeVM, Path: "/usr/bin/containerd-shim-kata-v2"}
	h := b.Runtime.Handlers["runc"]
	h.Path = "/usr/local/sbin/runc"
	b.Runtime.Handlers["runc"] = h
	want := []string{
		"log_level: info -> debug",
		"runtime.handlers.kata:  -> added",
		"runtime.handlers.runc.path: /usr/sbin/runc -> /usr/local/sbin/runc",
		"image.pause_image: registry.k8s.io/pause:3.10 -> example.com/pause:1",
		"nri.plugin_request_timeout: 2s -> 3s",
	}
	got := Diff(a, b)
	if len(got) != len(want) {
		t.Fatalf("got %d changes %v, want %v", len(got), got, want)
	}
	for i, c := range got {
		if s := c.Key.String() + ": " + c.Old + " -> " + c.New; s != want[i] {
			t.Errorf("change %d: got %q, want %q", i, s, want[i])
		}
	}
	delete(b.Runtime.Handlers, "runc")
	if got := Diff(a, b); got[1].Key.String() != "runtime.handlers.kata" || got[2].Key.String() != "runtime.handlers.runc" || got[2].New != "removed" {
		t.Errorf("removed handler: %v", got)
	}
}

func TestMapUsesKeyNames(t *testing.T) {
	m, err := Default().Map()
	if err != nil {
		t.Fatal(err)
	}
	rt := m["runtime"].(map[string]any)
	runc := rt["handlers"].(map[string]any)["runc"].(map[string]any)
	if m["listen"] != "unix:///run/cradle/cradle.sock" || rt["default_handler"] != "runc" || runc["path"] != "/usr/sbin/runc" ||
		m["stats"].(map[string]any)["collection_period"] != "10s" {
		t.Fatalf("unexpected map: %v", m)
	}
}
