package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Bundles is the directory that holds one bundle per container.
type Bundles string

// For is the bundle of container id. IDs are the daemon's own hex IDs;
// one that is not a plain name is refused rather than joined.
func (r Bundles) For(id string) (Bundle, error) {
	if id == "" || id == "." || !filepath.IsLocal(id) || filepath.Base(id) != id {
		return "", fmt.Errorf("container ID %q is not a plain name", id)
	}
	return Bundle(filepath.Join(string(r), id)), nil
}

// IDs lists the containers that have a bundle.
func (r Bundles) IDs() ([]string, error) {
	entries, err := os.ReadDir(string(r))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list bundles: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Bundle is one container's directory: its runtime spec (config.json),
// the monitor's files, its default log and its volume dirs. Only this type
// opens config.json.
type Bundle string

// Dir is the bundle's path.
func (b Bundle) Dir() string { return string(b) }

// File is the path of a file the backend keeps in the bundle.
func (b Bundle) File(name string) string { return filepath.Join(string(b), name) }

// LogPath is where the container logs when the pod names no log path.
func (b Bundle) LogPath() string { return b.File("ctr.log") }

// VolumeDir holds the image's volumes, removed with the bundle.
func (b Bundle) VolumeDir() string { return b.File("volumes") }

// Create makes the bundle; its parent is traversable, not listable, for
// containers in user namespaces.
func (b Bundle) Create() error {
	if err := os.MkdirAll(filepath.Dir(string(b)), 0o711); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	if err := os.MkdirAll(string(b), 0o700); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	return nil
}

// WriteSpec writes the runtime spec.
func (b Bundle) WriteSpec(s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	if err := os.WriteFile(b.File("config.json"), data, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return nil
}

// ReadSpec reads the runtime spec back.
func (b Bundle) ReadSpec() (*specs.Spec, error) {
	data, err := os.ReadFile(b.File("config.json"))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode spec %s: %w", b.File("config.json"), err)
	}
	return &s, nil
}

// CgroupsPath is the spec's linux.cgroupsPath.
func (b Bundle) CgroupsPath() (string, error) {
	s, err := b.ReadSpec()
	if err != nil {
		return "", err
	}
	if s.Linux == nil || s.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("spec in %s has no cgroups path", b)
	}
	return s.Linux.CgroupsPath, nil
}

// OOMKilled reports whether an OOM kill was recorded. conmon writes the
// same file when its OOM watch fires.
func (b Bundle) OOMKilled() bool {
	_, err := os.Stat(b.File("oom"))
	return err == nil
}

// BindRootfs makes a root filesystem reachable from inside a user
// namespace: the image store's directories are private to host root, so
// the mounted layer is bind-mounted into the bundle, whose path the
// namespace's root can traverse. It returns the new root path.
func (b Bundle) BindRootfs(src string) (string, error) {
	if err := os.Chmod(string(b), 0o711); err != nil {
		return "", fmt.Errorf("open up bundle for the user namespace: %w", err)
	}
	dst := b.File("rootfs")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", fmt.Errorf("create rootfs mountpoint: %w", err)
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("bind-mount rootfs into the bundle: %w", err)
	}
	return dst, nil
}

// Remove removes the bundle, unmounting a bound rootfs first so the
// removal never walks into the container's files. Idempotent.
func (b Bundle) Remove() error {
	dst := b.File("rootfs")
	if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dst, err)
	}
	if err := os.RemoveAll(string(b)); err != nil {
		return fmt.Errorf("remove bundle: %w", err)
	}
	return nil
}
