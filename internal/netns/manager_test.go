package netns

import (
	"os"
	"path/filepath"
	"testing"
)

// TestManagerSweepsOnlyItsOwn pins two sandboxes, forgets one, and adds a
// foreign pin in the shared network directory: the sweep releases the
// forgotten sandbox's pins and marker and touches nothing else.
func TestManagerSweepsOnlyItsOwn(t *testing.T) {
	requireRoot(t)
	netDir, dir := testDirs(t)
	owned := filepath.Join(t.TempDir(), "owned")
	m := NewManager(netDir, dir, owned)
	kept, gone := uniqueID(t)+"a", uniqueID(t)+"b"
	pins := map[string]Pins{}
	for _, id := range []string{kept, gone} {
		req := Request{ID: id, Kinds: AllKinds()}
		want := m.Paths(req)
		got, err := m.Pin(req)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("Pin put pins at %+v, Paths said %+v", got, want)
		}
		pins[id] = got
		t.Cleanup(func() { _ = UnpinAll(got) })
		if _, err := os.Stat(filepath.Join(owned, id)); err != nil {
			t.Fatalf("no owner marker for %s: %v", id, err)
		}
	}
	foreign := filepath.Join(netDir, NetPinPrefix+"someone-else")
	if err := os.WriteFile(foreign, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	m.Sweep(func(id string) bool { return id == kept })

	for _, p := range pins[gone].paths() {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("swept sandbox's pin %s still there: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(owned, gone)); !os.IsNotExist(err) {
		t.Errorf("swept sandbox's marker still there: %v", err)
	}
	for _, p := range pins[kept].paths() {
		if !IsNSFS(p) {
			t.Errorf("known sandbox's pin %s was released", p)
		}
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("foreign pin without a marker was removed: %v", err)
	}

	if err := m.Release(kept, pins[kept]); err != nil {
		t.Fatal(err)
	}
	if err := m.Release(kept, pins[kept]); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(owned, kept)); !os.IsNotExist(err) {
		t.Errorf("released sandbox's marker still there: %v", err)
	}
}
