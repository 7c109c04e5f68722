package image

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.podman.io/storage"
)

// Remove deletes an image with all its names, whichever of them (or its
// ID, or a digest reference) ref is. A missing image is not an error.
func (s *Service) Remove(ref string) error {
	// One at a time: a concurrent removal of the same image returns only
	// once the image is gone.
	s.removeMu.Lock()
	defer s.removeMu.Unlock()
	img, err := s.lookup(ref)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// No image volume may be mounted between the check and the deletion.
	s.volMu.Lock()
	err = s.checkUnused(ref, img)
	if err == nil {
		_, err = s.store.DeleteImage(img.ID, true)
	}
	s.volMu.Unlock()
	switch {
	case errors.Is(err, ErrInUse):
		return err
	case errors.Is(err, storage.ErrImageUsedByContainer):
		// A container was created since the check.
		return fmt.Errorf("%w: image %s (%s): %w", ErrInUse, ref, img.ID, err)
	case err != nil && !errors.Is(err, storage.ErrImageUnknown) && !errors.Is(err, storage.ErrNotAnImage):
		return fmt.Errorf("delete image %s: %w", img.ID, err)
	}
	s.mu.Lock()
	delete(s.configs, img.ID)
	s.mu.Unlock()
	slog.Info("removed image", "image", ref, "id", img.ID, "names", img.Names)
	return nil
}

// checkUnused fails when a container is based on the image or mounts it as
// an image volume. Call with volMu held.
func (s *Service) checkUnused(ref string, img *storage.Image) error {
	ctrs, err := s.store.Containers()
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range ctrs {
		if c.ImageID == img.ID {
			return fmt.Errorf("%w: image %s (%s) is used by container %s; remove the container first", ErrInUse, ref, img.ID, c.ID)
		}
	}
	users, err := s.volumeUsers()
	if err != nil {
		return err
	}
	if len(users[img.ID]) > 0 {
		return fmt.Errorf("%w: image %s (%s) is mounted as an image volume by container %s; remove it first",
			ErrInUse, ref, img.ID, strings.Join(users[img.ID], ", "))
	}
	// A mount nobody uses (a crash left it) must not keep the layer busy.
	return s.unmountIfUnused(img.ID)
}

// removeOrphanLayers deletes pulled layers that no image or container
// uses: what a failed or interrupted pull committed before it stopped.
// Only call it when no pull runs, since a running pull's layers have no
// image yet. Container layers are never touched: they carry no diff digest.
func (s *Service) removeOrphanLayers() {
	layers, err := s.store.Layers()
	if err != nil {
		slog.Warn("list layers for cleanup", "error", err)
		return
	}
	byID := map[string]*storage.Layer{}
	for i := range layers {
		byID[layers[i].ID] = &layers[i]
	}
	used := map[string]bool{}
	var mark func(id string)
	mark = func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			l, ok := byID[id]
			if !ok {
				return
			}
			id = l.Parent
		}
	}
	imgs, err := s.store.Images()
	if err != nil {
		slog.Warn("list images for cleanup", "error", err)
		return
	}
	for _, img := range imgs {
		mark(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			mark(m)
		}
	}
	ctrs, err := s.store.Containers()
	if err != nil {
		slog.Warn("list containers for cleanup", "error", err)
		return
	}
	for _, c := range ctrs {
		mark(c.LayerID)
	}
	// Children before parents: repeat until nothing more goes.
	for {
		parents := map[string]bool{}
		for _, l := range byID {
			parents[l.Parent] = true
		}
		removed := 0
		for id, l := range byID {
			if used[id] || parents[id] || (l.UncompressedDigest == "" && l.CompressedDigest == "") {
				continue
			}
			if err := s.store.DeleteLayer(id); err != nil {
				slog.Warn("remove orphaned layer", "layer", id, "error", err)
				used[id] = true // keep it out of the next rounds
				continue
			}
			slog.Info("removed layer no image uses (left by a failed pull)", "layer", id)
			delete(byID, id)
			removed++
		}
		if removed == 0 {
			return
		}
	}
}
