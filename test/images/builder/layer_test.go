package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"
)

func tarNames(t *testing.T, l *layer) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(l.blob))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Header.ModTime.Unix() > 0 || zr.Header.Name != "" {
		t.Errorf("gzip header has time %v, name %q; want neither", zr.Header.ModTime, zr.Header.Name)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func sample() *layer {
	l := newLayer("test")
	l.file("bin/busybox", 0o755, []byte("#!busybox"))
	l.hardlink("bin/[", "bin/busybox")
	l.hardlink("bin/ls", "bin/busybox")
	l.symlink("lib64/ld.so", "/lib/ld.so")
	l.dir("tmp", 0o1777)
	return l
}

// Hard links must follow their target even when they sort before it; the
// rest stays sorted, parents first.
func TestOrderHardLinksAfterTarget(t *testing.T) {
	l := sample()
	if err := l.build(time.Unix(1686355200, 0)); err != nil {
		t.Fatal(err)
	}
	got := tarNames(t, l)
	want := []string{"bin/", "bin/busybox", "bin/[", "bin/ls", "lib64/", "lib64/ld.so", "tmp/"}
	if len(got) != len(want) {
		t.Fatalf("entries %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entries %q, want %q", got, want)
		}
	}
}

// The same content gives the same bytes, whatever order it was added in.
func TestBuildReproducible(t *testing.T) {
	a := sample()
	b := newLayer("test")
	b.dir("tmp", 0o1777)
	b.symlink("lib64/ld.so", "/lib/ld.so")
	b.file("bin/busybox", 0o755, []byte("#!busybox"))
	b.hardlink("bin/ls", "bin/busybox")
	b.hardlink("bin/[", "bin/busybox")
	mtime := time.Unix(1686355200, 0)
	if err := a.build(mtime); err != nil {
		t.Fatal(err)
	}
	if err := b.build(mtime); err != nil {
		t.Fatal(err)
	}
	if a.digest != b.digest || a.diffID != b.diffID {
		t.Fatalf("digests differ: %s/%s vs %s/%s", a.digest, a.diffID, b.digest, b.diffID)
	}
}
