package image

import (
	"errors"
	"fmt"

	"go.podman.io/storage"
)

// CreateRootfs makes a writable layer for container id on top of imageID and
// mounts it. On failure nothing is left in the store.
func (s *Service) CreateRootfs(id, name, imageID string) (string, error) {
	return s.createRootfs(id, name, imageID, nil)
}

func (s *Service) createRootfs(id, name, imageID string, opts *storage.ContainerOptions) (string, error) {
	if _, err := s.store.CreateContainer(id, []string{name}, imageID, "", "", opts); err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return "", fmt.Errorf("writable layer name %s is taken: %w", name, err)
		}
		return "", fmt.Errorf("create writable layer for %s: %w", id, err)
	}
	mnt, err := s.store.Mount(id, "")
	if err != nil {
		_ = s.store.DeleteContainer(id)
		return "", fmt.Errorf("mount writable layer for %s: %w", id, err)
	}
	return mnt, nil
}

// RemoveRootfs releases the container's image volumes, then unmounts and
// deletes its layer; idempotent.
func (s *Service) RemoveRootfs(id string) error {
	if err := s.UnmountVolumes(id); err != nil {
		return err
	}
	if _, err := s.store.Container(id); errors.Is(err, storage.ErrContainerUnknown) {
		return nil
	}
	if _, err := s.store.Unmount(id, true); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrLayerUnknown) {
		return fmt.Errorf("unmount writable layer of %s: %w", id, err)
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return fmt.Errorf("delete writable layer of %s: %w", id, err)
	}
	return nil
}

// StorageContainers lists the IDs of writable layers, for the startup sweep.
func (s *Service) StorageContainers() ([]string, error) {
	ctrs, err := s.store.Containers()
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ctrs))
	for _, c := range ctrs {
		ids = append(ids, c.ID)
	}
	return ids, nil
}
