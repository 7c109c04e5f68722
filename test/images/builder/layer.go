package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// entry is one file system object of a layer. Names are clean paths relative
// to the image root, without a leading slash ("bin/busybox").
type entry struct {
	name     string
	typ      byte // tar.TypeReg, TypeDir, TypeSymlink or TypeLink
	mode     int64
	uid, gid int
	data     []byte
	link     string // symlink target, or hard link target (an entry name)
}

// layer is an in-memory file tree that serialises to a reproducible tar.gz.
type layer struct {
	comment string
	entries map[string]*entry
	lower   []*layer // layers below this one, to avoid copying their libraries again

	built            bool
	blob             []byte
	diffID, digest   string
	uncompressedSize int64
}

func newLayer(comment string, lower ...*layer) *layer {
	return &layer{comment: comment, entries: map[string]*entry{}, lower: lower}
}

func clean(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		panic("empty path")
	}
	return p
}

// has reports whether p exists in this layer or a lower one.
func (l *layer) has(p string) bool {
	p = clean(p)
	if _, ok := l.entries[p]; ok {
		return true
	}
	for _, lo := range l.lower {
		if lo.has(p) {
			return true
		}
	}
	return false
}

func (l *layer) put(e *entry) {
	l.parents(e.name)
	l.entries[e.name] = e
}

// parents adds missing parent directories with mode 0755, so the tar never
// relies on the unpacker to invent them (their modes would vary).
func (l *layer) parents(p string) {
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		if _, ok := l.entries[d]; ok {
			continue
		}
		l.entries[d] = &entry{name: d, typ: tar.TypeDir, mode: 0o755}
	}
}

func (l *layer) dir(p string, mode int64) {
	l.dirOwned(p, mode, 0, 0)
}

func (l *layer) dirOwned(p string, mode int64, uid, gid int) {
	l.put(&entry{name: clean(p), typ: tar.TypeDir, mode: mode, uid: uid, gid: gid})
}

func (l *layer) file(p string, mode int64, data []byte) {
	l.put(&entry{name: clean(p), typ: tar.TypeReg, mode: mode, data: data})
}

func (l *layer) text(p, s string) {
	l.file(p, 0o644, []byte(s))
}

func (l *layer) symlink(p, target string) {
	l.put(&entry{name: clean(p), typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// hardlink adds p as a hard link to target, which must be a regular file of
// this same layer.
func (l *layer) hardlink(p, target string) {
	t := clean(target)
	if e, ok := l.entries[t]; !ok || e.typ != tar.TypeReg {
		panic(fmt.Sprintf("hard link %s: target %s is not a regular file of the layer", p, t))
	}
	l.put(&entry{name: clean(p), typ: tar.TypeLink, link: t})
}

// copyFile copies a regular file from the extracted Debian tree. mode 0 keeps
// the permission bits it has there.
func (l *layer) copyFile(src, dst string, mode int64) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if mode == 0 {
		fi, err := os.Stat(src)
		if err != nil {
			return err
		}
		mode = int64(fi.Mode().Perm())
	}
	l.file(dst, mode, data)
	return nil
}

// copyTree copies a directory of the extracted tree, keeping symlinks, for
// every path that keep accepts (relative to src).
func (l *layer) copyTree(src, dst string, keep func(rel string) bool) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			l.dir(dst, 0o755)
			return nil
		}
		if !keep(filepath.ToSlash(rel)) {
			if fi.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := path.Join(dst, filepath.ToSlash(rel))
		switch {
		case fi.IsDir():
			l.dir(target, int64(fi.Mode().Perm()))
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			l.symlink(target, t)
		case fi.Mode().IsRegular():
			return l.copyFile(p, target, 0)
		}
		return nil
	})
}

// order lists the entries sorted by name, except that a hard link whose
// target sorts after it ("bin/[" before "bin/busybox") waits until just after
// its target: unpackers need the target first.
func (l *layer) order() []*entry {
	names := make([]string, 0, len(l.entries))
	for n := range l.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	done := map[string]bool{}
	pending := map[string][]*entry{}
	out := make([]*entry, 0, len(names))
	var emit func(e *entry)
	emit = func(e *entry) {
		out = append(out, e)
		done[e.name] = true
		for _, w := range pending[e.name] {
			emit(w)
		}
		delete(pending, e.name)
	}
	for _, n := range names {
		e := l.entries[n]
		if e.typ == tar.TypeLink && !done[e.link] {
			pending[e.link] = append(pending[e.link], e)
			continue
		}
		emit(e)
	}
	if len(pending) != 0 {
		panic("hard links left without target")
	}
	return out
}

// build serialises the layer once: fixed mtimes, root ownership unless set,
// no user or group names, gzip without name or time.
func (l *layer) build(mtime time.Time) error {
	if l.built {
		return nil
	}
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, e := range l.order() {
		h := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  mtime,
			Linkname: e.link,
		}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		case tar.TypeLink:
			h.Mode = l.entries[e.link].mode
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var gzBuf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	// The zero gzip.Header has no name and mtime 0, so output depends only on
	// the tar bytes (and the Go version's deflate).
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	l.diffID = sha256hex(tarBuf.Bytes())
	l.blob = gzBuf.Bytes()
	l.digest = sha256hex(l.blob)
	l.uncompressedSize = int64(tarBuf.Len())
	l.built = true
	return nil
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
