package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBundlesForRefusesNonNames(t *testing.T) {
	root := Bundles(t.TempDir())
	for _, id := range []string{"", ".", "..", "../x", "a/b", "/abs"} {
		if b, err := root.For(id); err == nil {
			t.Errorf("For(%q) = %q, want an error", id, b)
		}
	}
	b, err := root.For("abc123")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(string(root), "abc123"); b.Dir() != want {
		t.Fatalf("For = %q, want %q", b, want)
	}
}

func TestBundleLifecycle(t *testing.T) {
	root := Bundles(filepath.Join(t.TempDir(), "containers"))
	if ids, err := root.IDs(); err != nil || len(ids) != 0 {
		t.Fatalf("IDs of a missing root = %v, %v; want none", ids, err)
	}
	b, _ := root.For("c1")
	if err := b.Create(); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{string(root): 0o711, b.Dir(): 0o700} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s: mode %v, %v; want %v", path, fi.Mode().Perm(), err, want)
		}
	}
	if _, err := b.CgroupsPath(); err == nil {
		t.Fatal("CgroupsPath without a spec: want an error")
	}
	in := &specs.Spec{Version: specs.Version, Linux: &specs.Linux{CgroupsPath: "/pod/c1"}}
	if err := b.WriteSpec(in); err != nil {
		t.Fatal(err)
	}
	if got, err := b.CgroupsPath(); err != nil || got != "/pod/c1" {
		t.Fatalf("CgroupsPath = %q, %v", got, err)
	}
	if b.OOMKilled() {
		t.Fatal("OOMKilled before any oom file")
	}
	if err := os.WriteFile(b.File("oom"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !b.OOMKilled() {
		t.Fatal("OOMKilled false with an oom file")
	}
	if ids, _ := root.IDs(); !slices.Equal(ids, []string{"c1"}) {
		t.Fatalf("IDs = %v", ids)
	}
	for range 2 { // idempotent
		if err := b.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(b.Dir()); !os.IsNotExist(err) {
		t.Fatalf("bundle still there: %v", err)
	}
}
