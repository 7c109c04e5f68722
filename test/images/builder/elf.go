package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// libDirs are the directories Debian's dynamic loader searches by default
// on amd64, in its order; the images carry no ld.so.cache.
var libDirs = []string{
	"lib/x86_64-linux-gnu",
	"usr/lib/x86_64-linux-gnu",
	"lib64",
	"lib",
	"usr/lib",
}

// sysroot is the tree the Debian packages were extracted into.
type sysroot string

func (r sysroot) abs(p string) string {
	return filepath.Join(string(r), filepath.FromSlash(clean(p)))
}

// addPath copies p from the sysroot into l, keeping symlinks as symlinks and
// following them so the target comes along too. Paths that l or a lower
// layer already has are skipped.
func (r sysroot) addPath(l *layer, p string) error {
	for hops := 0; hops < 16; hops++ {
		p = clean(p)
		if l.has(p) {
			return nil
		}
		fi, err := os.Lstat(r.abs(p))
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return l.copyFile(r.abs(p), p, 0)
		}
		t, err := os.Readlink(r.abs(p))
		if err != nil {
			return err
		}
		l.symlink(p, t)
		if !strings.HasPrefix(t, "/") {
			t = path.Join(path.Dir(p), t)
		}
		p = t
	}
	return fmt.Errorf("%s: too many symlinks", p)
}

// findLib resolves a DT_NEEDED name the way the loader would.
func (r sysroot) findLib(name string) (string, error) {
	for _, d := range libDirs {
		p := path.Join(d, name)
		if _, err := os.Stat(r.abs(p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("library %s not found in the extracted packages (add its .deb to build.sh)", name)
}

// addELF copies the ELF file src (a sysroot path) to dst in l, with its
// program interpreter and every shared library it needs, transitively.
func (r sysroot) addELF(l *layer, src, dst string, mode int64) error {
	if err := l.copyFile(r.abs(src), dst, mode); err != nil {
		return err
	}
	return r.addDeps(l, src, map[string]bool{})
}

func (r sysroot) addDeps(l *layer, p string, seen map[string]bool) error {
	if seen[p] {
		return nil
	}
	seen[p] = true
	f, err := elf.Open(r.abs(p))
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	defer f.Close()
	var deps []string
	for _, prog := range f.Progs {
		if prog.Type != elf.PT_INTERP {
			continue
		}
		b := make([]byte, prog.Filesz)
		if _, err := prog.ReadAt(b, 0); err != nil {
			return err
		}
		interp := strings.TrimRight(string(b), "\x00")
		deps = append(deps, interp)
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, n := range needed {
		lib, err := r.findLib(n)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		deps = append(deps, lib)
	}
	for _, d := range deps {
		if err := r.addPath(l, d); err != nil {
			return err
		}
		// Recurse on the real file so its own needs come along too.
		real, err := r.resolve(d)
		if err != nil {
			return err
		}
		if err := r.addDeps(l, real, seen); err != nil {
			return err
		}
	}
	return nil
}

// resolve follows symlinks inside the sysroot (absolute targets are taken
// relative to it, as inside the image).
func (r sysroot) resolve(p string) (string, error) {
	for hops := 0; hops < 16; hops++ {
		p = clean(p)
		fi, err := os.Lstat(r.abs(p))
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return p, nil
		}
		t, err := os.Readlink(r.abs(p))
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(t, "/") {
			t = path.Join(path.Dir(p), t)
		}
		p = t
	}
	return "", fmt.Errorf("%s: too many symlinks", p)
}
