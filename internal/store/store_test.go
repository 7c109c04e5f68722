package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type rec struct {
	Name string `json:"name"`
}

func TestPutLoadDelete(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "recs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("a", rec{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	load := func(id string, data json.RawMessage) error {
		var r rec
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		got[id] = r.Name
		return nil
	}
	if err := d.LoadAll(load); err != nil {
		t.Fatal(err)
	}
	if got["a"] != "x" || len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	if err := d.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete("a"); err != nil {
		t.Fatalf("second delete: %v", err)
	}
}

func TestCorruptRecordIsQuarantined(t *testing.T) {
	root := t.TempDir()
	d, err := Open(filepath.Join(root, "recs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put("good", rec{Name: "g"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "recs", "bad.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := d.LoadAll(func(string, json.RawMessage) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("loaded %d records, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(root, "recs", "bad.json")); !os.IsNotExist(err) {
		t.Fatalf("bad record still in place: %v", err)
	}
	q, _ := os.ReadDir(filepath.Join(root, "quarantine"))
	if len(q) != 1 {
		t.Fatalf("quarantine holds %d files, want 1", len(q))
	}
}
