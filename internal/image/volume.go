package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"go.podman.io/storage"
)

// ImageVolume is a stored image mounted read-only for a container's image
// volume (CRI Mount.image, KEP-4639).
type ImageVolume struct {
	ImageID   string // "sha256:<config digest>": the mount's image_ref in ContainerStatus
	StorageID string
	Root      string // the image's root file system on the host, read-only
	Path      string // what to bind-mount: Root, or the sub path inside it
}

// Each image is mounted once, for all the containers that use it. Who uses
// which image is recorded per container under the run root (mounts do not
// outlive a reboot either), before the mount is made, so a crash at any
// point is repaired at the next start.

// MountVolume mounts the stored image ref read-only for container ctrID
// and returns the host path to bind-mount, subPath (relative, inside the
// image) resolved in it. The container's root filesystem must exist
// (CreateRootfs): RemoveRootfs and UnmountVolumes release its volumes.
func (s *Service) MountVolume(ctrID, ref, subPath string) (*ImageVolume, error) {
	if subPath != "" && (filepath.IsAbs(subPath) || escapes(subPath)) {
		return nil, fmt.Errorf("%w %q: must be relative and stay inside the image", ErrInvalidSubPath, subPath)
	}
	s.volMu.Lock()
	defer s.volMu.Unlock()
	if _, err := s.store.Container(ctrID); err != nil {
		return nil, fmt.Errorf("image volume for container %s: its root filesystem must be created first: %w", ctrID, err)
	}
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	uses, err := s.volumeUses(ctrID)
	if err != nil {
		return nil, err
	}
	added := !slices.Contains(uses, img.ID)
	if added {
		if err := s.setVolumeUses(ctrID, append(uses, img.ID)); err != nil {
			return nil, err
		}
	}
	undo := func() {
		if added {
			_ = s.setVolumeUses(ctrID, uses)
			s.unmountIfUnused(img.ID)
		}
	}
	root, err := s.store.MountImage(img.ID, nil, "")
	if err != nil {
		undo()
		return nil, fmt.Errorf("mount image %s (%s) read-only: %w", ref, img.ID, err)
	}
	v := &ImageVolume{ImageID: "sha256:" + img.ID, StorageID: img.ID, Root: root, Path: root}
	if subPath != "" {
		// Symlinks in the image resolve inside the image, never to the host.
		p, err := securejoin.SecureJoin(root, subPath)
		if err == nil {
			_, err = os.Stat(p)
		}
		if err != nil {
			undo()
			return nil, fmt.Errorf("%w %q in image %s: %w", ErrInvalidSubPath, subPath, ref, err)
		}
		v.Path = p
	}
	slog.Debug("mounted image volume", "container", ctrID, "image", ref, "id", img.ID, "path", v.Path)
	return v, nil
}

// UnmountVolumes releases every image volume of container ctrID; an image
// no other container uses is unmounted. Idempotent.
func (s *Service) UnmountVolumes(ctrID string) error {
	s.volMu.Lock()
	defer s.volMu.Unlock()
	uses, err := s.volumeUses(ctrID)
	if err != nil || len(uses) == 0 {
		return err
	}
	if err := s.setVolumeUses(ctrID, nil); err != nil {
		return err
	}
	var errs []error
	for _, id := range uses {
		errs = append(errs, s.unmountIfUnused(id))
	}
	return errors.Join(errs...)
}

// unmountIfUnused unmounts image id unless a container still uses it.
func (s *Service) unmountIfUnused(id string) error {
	users, err := s.volumeUsers()
	if err != nil || len(users[id]) > 0 {
		return err
	}
	img, err := s.store.Image(id)
	if err != nil {
		return nil // removed since
	}
	if n, err := s.store.Mounted(img.TopLayer); err != nil || n == 0 {
		return nil
	}
	// Forced: one unmount whatever the mount count.
	if _, err := s.store.UnmountImage(id, true); err != nil && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount image volume %s: %w", id, err)
	}
	slog.Debug("unmounted image volume", "id", id)
	return nil
}

// reconcileVolumes runs at start: uses by containers that are gone are
// dropped, and images no container uses are unmounted.
func (s *Service) reconcileVolumes() {
	s.volMu.Lock()
	defer s.volMu.Unlock()
	users, err := s.volumeUsers()
	if err != nil {
		slog.Warn("read image volume uses", "error", err)
		return
	}
	for _, ctrs := range users {
		for _, c := range ctrs {
			if _, err := s.store.Container(c); errors.Is(err, storage.ErrContainerUnknown) {
				_ = s.setVolumeUses(c, nil)
			}
		}
	}
	imgs, err := s.store.Images()
	if err != nil {
		return
	}
	for _, img := range imgs {
		if err := s.unmountIfUnused(img.ID); err != nil {
			slog.Warn("unmount unused image volume", "image", img.ID, "error", err)
		}
	}
}

func (s *Service) volumeDir() string { return filepath.Join(s.cur().opts.RunRoot, "image-volumes") }

// volumeUses lists the storage IDs of the images container ctrID mounts.
func (s *Service) volumeUses(ctrID string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.volumeDir(), ctrID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image volumes of %s: %w", ctrID, err)
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, fmt.Errorf("read image volumes of %s: %w", ctrID, err)
	}
	return ids, nil
}

// setVolumeUses replaces the record atomically; none removes it.
func (s *Service) setVolumeUses(ctrID string, ids []string) error {
	p := filepath.Join(s.volumeDir(), ctrID)
	if len(ids) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("record image volumes of %s: %w", ctrID, err)
		}
		return nil
	}
	if err := os.MkdirAll(s.volumeDir(), 0o700); err != nil {
		return fmt.Errorf("record image volumes of %s: %w", ctrID, err)
	}
	b, _ := json.Marshal(ids)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record image volumes of %s: %w", ctrID, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("record image volumes of %s: %w", ctrID, err)
	}
	return nil
}

// volumeUsers maps image storage IDs to the containers that mount them.
func (s *Service) volumeUsers() (map[string][]string, error) {
	entries, err := os.ReadDir(s.volumeDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list image volume uses: %w", err)
	}
	users := map[string][]string{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		ids, err := s.volumeUses(e.Name())
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			users[id] = append(users[id], e.Name())
		}
	}
	return users, nil
}

func escapes(p string) bool {
	c := filepath.Clean(p)
	return c == ".." || strings.HasPrefix(c, "../")
}
