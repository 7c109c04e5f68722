package ocispec

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"syscall"
)

// ImageVolume is one of the image's VOLUMEs and the per-container host
// directory that backs it.
type ImageVolume struct {
	ContainerPath string
	HostPath      string
}

// ImageVolumes lists the image's VOLUMEs that the container gets, each in a
// directory of its own under in.VolumeDir; a VOLUME the config already
// mounts is skipped. It does no I/O: PrepareHost creates the directories.
func ImageVolumes(in *ContainerInput) []ImageVolume {
	if in.VolumeDir == "" || len(in.Image.Volumes) == 0 {
		return nil
	}
	taken := map[string]bool{}
	for _, m := range in.Config.GetMounts() {
		taken[path.Clean(m.GetContainerPath())] = true
	}
	dsts := make([]string, 0, len(in.Image.Volumes))
	for v := range in.Image.Volumes {
		dsts = append(dsts, path.Clean("/"+v))
	}
	sort.Strings(dsts)
	var out []ImageVolume
	for i, dst := range dsts {
		if taken[dst] || dst == "/" || (i > 0 && dsts[i-1] == dst) {
			continue
		}
		sum := sha256.Sum256([]byte(dst))
		out = append(out, ImageVolume{ContainerPath: dst, HostPath: filepath.Join(in.VolumeDir, hex.EncodeToString(sum[:8]))})
	}
	return out
}

// createVolume makes v's host directory, holding a copy of what the image
// has at that path (owners and modes kept), as docker does. A directory
// that exists is left alone. The copy is built aside and renamed in.
func createVolume(rootfs string, v ImageVolume) error {
	if _, err := os.Lstat(v.HostPath); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(v.HostPath), 0o711); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(v.HostPath), ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := copyUp(rootfs, v.ContainerPath, tmp); err != nil {
		return fmt.Errorf("volume %s: %w", v.ContainerPath, err)
	}
	return os.Rename(tmp, v.HostPath)
}

// copyUp copies the directory at ctrPath in the rootfs into dst. Paths are
// resolved inside the rootfs; a path that is missing, not a directory, or
// leaves the rootfs through a symlink gives an empty volume.
func copyUp(rootfs, ctrPath, dst string) error {
	if rootfs == "" {
		return nil
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil
	}
	defer root.Close()
	src, err := root.OpenRoot(filepath.Join(".", ctrPath))
	if err != nil {
		return nil
	}
	defer src.Close()
	return fs.WalkDir(src.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return copyEntry(src, p, filepath.Join(dst, p))
	})
}

func copyEntry(src *os.Root, p, to string) error {
	fi, err := src.Lstat(p)
	if err != nil {
		return err
	}
	switch {
	case fi.IsDir():
		if p != "." {
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		}
	case fi.Mode().IsRegular():
		if err := copyFile(src, p, to); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := src.Readlink(p)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil {
			return err
		}
	default: // devices, sockets, fifos: not copied
		return nil
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if err := os.Lchown(to, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil
	}
	return os.Chmod(to, fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
}

func copyFile(src *os.Root, p, to string) error {
	in, err := src.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
