package oci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// BindRootfs makes a container's root filesystem reachable from inside a
// user namespace: the image store's directories are private to host root,
// so the mounted layer is bind-mounted into the bundle, whose path the
// namespace's root can traverse. It returns the new root path.
func BindRootfs(src, bundle string) (string, error) {
	if err := os.Chmod(bundle, 0o711); err != nil {
		return "", fmt.Errorf("open up bundle for the user namespace: %w", err)
	}
	dst := filepath.Join(bundle, "rootfs")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", fmt.Errorf("create rootfs mountpoint: %w", err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind-mount rootfs into the bundle: %w", err)
	}
	return dst, nil
}

// UnbindRootfs undoes BindRootfs; idempotent. It must run before the
// bundle is removed, or the removal would walk into the container's files.
func UnbindRootfs(bundle string) error {
	dst := filepath.Join(bundle, "rootfs")
	if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dst, err)
	}
	return nil
}

// RemoveBundle removes a container's bundle directory, unmounting a bound
// rootfs first.
func RemoveBundle(bundle string) error {
	if err := UnbindRootfs(bundle); err != nil {
		return err
	}
	return os.RemoveAll(bundle)
}
