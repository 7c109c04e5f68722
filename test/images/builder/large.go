package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// The pull benchmark's image (make bench, issue #16): about 300 MB in
// largeLayers layers of seeded pseudo-random files, so it is the same on
// every machine yet gzip cannot shrink most of it, as with real binaries.
// One file in four is base64-like text (6 bits per byte), which gzip does
// compress, so decompression has real work to do too.
const (
	largeLayers   = 8
	largeFiles    = 18      // per layer
	largeFileSize = 2 << 20 // bytes
	largeRef      = "bench-large"
	largePush     = "cradle/bench-large:1"
)

const textAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// pseudoRandom fills n bytes from a ChaCha8 stream seeded by seed; text maps
// them onto textAlphabet, with a newline every 76 characters.
func pseudoRandom(seed uint64, n int, text bool) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	r := rand.NewChaCha8(key)
	b := make([]byte, n)
	_, _ = r.Read(b) // ChaCha8.Read never fails
	if text {
		for i := range b {
			if i%77 == 76 {
				b[i] = '\n'
			} else {
				b[i] = textAlphabet[b[i]&63]
			}
		}
	}
	return b
}

// largeLayer is layer i (0-based) of the bench image: its own directory of
// files, so no layer overwrites another's.
func largeLayer(i int) *layer {
	l := newLayer(fmt.Sprintf("bench data %d of %d", i+1, largeLayers))
	for f := 0; f < largeFiles; f++ {
		text := f%4 == 3
		name := fmt.Sprintf("bench/layer%d/blob%02d.bin", i+1, f)
		if text {
			name = fmt.Sprintf("bench/layer%d/text%02d.txt", i+1, f)
		}
		l.file(name, 0o644, pseudoRandom(uint64(i*largeFiles+f+1), largeFileSize, text))
	}
	return l
}

// largeImages is the bench image alone. Its layers are built (tar + gzip)
// in parallel, since gzip of 300 MB is seconds of CPU per core.
func largeImages(created time.Time) ([]*image, error) {
	layers := make([]*layer, largeLayers)
	errs := make([]error, largeLayers)
	var wg sync.WaitGroup
	for i := range layers {
		layers[i] = largeLayer(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = layers[i].build(created)
			layers[i].entries = nil // the tar.gz is all that is needed now
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench layer %d: %w", i+1, err)
		}
	}
	return []*image{{
		ref:    largeRef,
		layers: layers,
		config: execConfig{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}},
		push:   []string{largePush},
	}}, nil
}
