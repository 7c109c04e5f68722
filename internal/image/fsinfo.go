package image

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Usage is the space and the inodes a part of the store takes on the file
// system that holds the store.
type Usage struct {
	Mountpoint string // the store's graph root
	Bytes      uint64
	Inodes     uint64
}

// GraphRoot is where image layers live.
func (s *Service) GraphRoot() string { return s.store.GraphRoot() }

// FsInfo measures the image layers and, apart, the containers' writable
// layers. Mounted root file systems are not entered: they would count the
// image layers again.
func (s *Service) FsInfo() (images, containers Usage, err error) {
	root := s.store.GraphRoot()
	images.Mountpoint, containers.Mountpoint = root, root
	ctrDirs := map[string]bool{}
	ctrs, err := s.store.Containers()
	if err != nil {
		return images, containers, err
	}
	driver := s.store.GraphDriverName()
	for _, c := range ctrs {
		for _, d := range []string{
			filepath.Join(root, driver, c.LayerID),        // overlay
			filepath.Join(root, driver, "dir", c.LayerID), // vfs
			filepath.Join(root, driver+"-containers", c.ID),
		} {
			if _, err := os.Lstat(d); err == nil {
				ctrDirs[d] = true
			}
		}
	}
	if images.Bytes, images.Inodes, err = usage(root, ctrDirs); err != nil {
		return images, containers, err
	}
	for d := range ctrDirs {
		b, i, err := usage(d, nil)
		if err != nil {
			return images, containers, err
		}
		containers.Bytes += b
		containers.Inodes += i
	}
	return images, containers, nil
}

// FsUsage walks dir and returns the bytes and inodes used below it on its
// own file system: a container's writable layer, for example.
func FsUsage(dir string) (bytes, inodes uint64, err error) { return usage(dir, nil) }

// usage walks dir on its own file system, skipping the skip dirs, and
// counts allocated bytes and inodes (hard links once).
func usage(dir string, skip map[string]bool) (bytes, inodes uint64, err error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return 0, 0, err
	}
	dev := st.Sys().(*syscall.Stat_t).Dev
	seen := map[uint64]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return nil // entries vanish while layers are removed
		}
		if skip[p] {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Dev != dev {
			if d.IsDir() {
				return filepath.SkipDir // a mount: a container's root fs
			}
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		bytes += uint64(st.Blocks) * 512
		inodes++
		return nil
	})
	return bytes, inodes, err
}
