package vmshim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/cradle-runtime/cradle/internal/agent"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// validID keeps a task ID one path element of the share.
func validID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, "/\x00") {
		return fmt.Errorf("task id %q is not a valid ID", id)
	}
	return nil
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

// shareContainer makes the container's root and bind mounts visible to
// the guest: each is bind-mounted under share/<id>, which qemu serves
// over 9p, and the spec's sources are rewritten to the guest's paths.
func shareContainer(share, id, root string, sp *specs.Spec) (retErr error) {
	if err := validID(id); err != nil {
		return err
	}
	dir := filepath.Join(share, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_ = unshareContainer(share, id)
		}
	}()
	if err := bindInto(root, filepath.Join(dir, "rootfs"), true); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	for i, m := range sp.Mounts {
		switch {
		case m.Destination == "/dev/shm":
			// The pod's shm is the guest's own memory.
			sp.Mounts[i] = specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}
		case isBind(m):
			fi, err := os.Stat(m.Source)
			if err != nil {
				return fmt.Errorf("mount %s: %w", m.Destination, err)
			}
			name := "m" + strconv.Itoa(i)
			if err := bindInto(m.Source, filepath.Join(dir, name), fi.IsDir()); err != nil {
				return fmt.Errorf("mount %s: %w", m.Destination, err)
			}
			sp.Mounts[i].Source = filepath.Join(agent.ShareDir, id, name)
		}
	}
	return nil
}

// bindInto bind-mounts src (recursively) onto a new dst.
func bindInto(src, dst string, dir bool) error {
	if dir {
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
	} else if err := os.WriteFile(dst, nil, 0o600); err != nil {
		return err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}

// unshareContainer unmounts share/<id>'s mounts and removes it. Only
// what is empty once unmounted is removed: a mount that would not go
// keeps the container's files out of the removal.
func unshareContainer(share, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	dir := filepath.Join(share, id)
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Mountpoint, err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
