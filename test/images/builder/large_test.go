package main

import (
	"bytes"
	"testing"
	"time"
)

func TestPseudoRandomDeterministic(t *testing.T) {
	a, b := pseudoRandom(7, 4096, false), pseudoRandom(7, 4096, false)
	if !bytes.Equal(a, b) {
		t.Fatal("same seed gave different bytes")
	}
	if bytes.Equal(a, pseudoRandom(8, 4096, false)) {
		t.Fatal("different seeds gave the same bytes")
	}
	txt := pseudoRandom(7, 4096, true)
	for i, c := range txt {
		if i%77 == 76 {
			if c != '\n' {
				t.Fatalf("byte %d = %q, want a newline", i, c)
			}
		} else if !bytes.ContainsRune([]byte(textAlphabet), rune(c)) {
			t.Fatalf("byte %d = %q, not in the text alphabet", i, c)
		}
	}
}

func TestLargeLayerReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 2 x 36 MiB")
	}
	epoch := time.Unix(1686355200, 0)
	a, b := largeLayer(2), largeLayer(2)
	if err := a.build(epoch); err != nil {
		t.Fatal(err)
	}
	if err := b.build(epoch); err != nil {
		t.Fatal(err)
	}
	if a.digest != b.digest || a.diffID != b.diffID {
		t.Fatalf("digests differ: %s/%s vs %s/%s", a.digest, a.diffID, b.digest, b.diffID)
	}
	if want := int64(largeFiles * largeFileSize); a.uncompressedSize < want {
		t.Fatalf("uncompressed %d bytes, want at least %d", a.uncompressedSize, want)
	}
	// Mostly incompressible: gzip keeps at least 80 % of the bytes.
	if r := float64(len(a.blob)) / float64(a.uncompressedSize); r < 0.8 {
		t.Fatalf("compressed to %.2f of the tar; want >= 0.8", r)
	}
	names := tarNames(t, a)
	if len(names) != largeFiles+2 { // bench/, bench/layer3/ and the files
		t.Fatalf("%d tar entries: %v", len(names), names)
	}
}
