package ocispec

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A FIFO named as a seccomp profile or found as an image's /etc/passwd is
// refused at once: opening it must not wait for a writer.
func TestRegularFileRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := readProfile(fifo); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("readProfile(FIFO) = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readProfile blocked on a FIFO")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if _, err := openImageFile(root, "fifo"); err == nil {
		t.Error("openImageFile opened a FIFO")
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openImageFile(root, "passwd")
	if err != nil {
		t.Fatalf("openImageFile(regular) = %v", err)
	}
	f.Close()
}
