package image

import (
	"context"
	"fmt"
	"slices"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// ImageInfo is what the CRI reports about a stored image.
type ImageInfo struct {
	ID          string // "sha256:<config digest>"
	StorageID   string
	RepoTags    []string
	RepoDigests []string
	Size        uint64
	Config      imgspecv1.ImageConfig
	OCI         imgspecv1.Image // the whole config, for verbose status
	Pinned      bool

	names []string // storage names the cached entry was built from
}

// Resolve finds a stored image by ID, ID prefix, name or digest reference.
func (s *Service) Resolve(ref string) (*ImageInfo, error) {
	img, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.info(img)
}

// lookup finds ref as a full ID, "sha256:" ID prefix, name, or digest
// reference, and only then as a bare ID prefix, so that a short name made
// of hex letters ("cafe") means the image of that name.
func (s *Service) lookup(ref string) (*storage.Image, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	id := strings.TrimPrefix(ref, "sha256:")
	hex := isHexID(ref)
	if hex && (len(id) == 64 || id != ref) {
		if img := s.byIDPrefix(id); img != nil {
			return img, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	names, err := shortnames.ResolveLocally(s.cur().sys, ref)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
	}
	for _, named := range names {
		if img, err := s.store.Image(named.String()); err == nil {
			return img, nil
		}
		if c, ok := named.(reference.Canonical); ok {
			if img := s.byDigest(c); img != nil {
				return img, nil
			}
		}
	}
	if hex {
		if img := s.byIDPrefix(id); img != nil {
			return img, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, ref)
}

func (s *Service) byIDPrefix(prefix string) *storage.Image {
	if len(prefix) == 64 {
		if img, err := s.store.Image(prefix); err == nil && img.ID == prefix {
			return img
		}
		return nil
	}
	imgs, err := s.store.Images()
	if err != nil {
		return nil
	}
	var found *storage.Image
	for i := range imgs {
		if strings.HasPrefix(imgs[i].ID, prefix) {
			if found != nil {
				return nil // ambiguous
			}
			found = &imgs[i]
		}
	}
	return found
}

// byDigest matches repo@digest against an image pulled by tag from repo.
func (s *Service) byDigest(c reference.Canonical) *storage.Image {
	imgs, err := s.store.ImagesByDigest(c.Digest())
	if err != nil {
		return nil
	}
	for _, img := range imgs {
		for _, n := range img.Names {
			if named, err := reference.ParseNormalizedNamed(n); err == nil && named.Name() == c.Name() {
				return img
			}
		}
	}
	return nil
}

func (s *Service) info(img *storage.Image) (*ImageInfo, error) {
	s.mu.Lock()
	cached, ok := s.configs[img.ID]
	s.mu.Unlock()
	if ok && slices.Equal(cached.names, img.Names) {
		return cached, nil
	}
	ii := &ImageInfo{ID: "sha256:" + img.ID, StorageID: img.ID, RepoTags: repoTags(img), RepoDigests: repoDigests(img),
		names: slices.Clone(img.Names)}
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, img.ID)
	if err != nil {
		return nil, fmt.Errorf("reference image %s: %w", img.ID, err)
	}
	src, err := ref.NewImage(context.Background(), s.cur().sys)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", img.ID, err)
	}
	defer src.Close()
	cfg, err := src.OCIConfig(context.Background())
	if err != nil {
		return nil, fmt.Errorf("read config of image %s: %w", img.ID, err)
	}
	ii.Config, ii.OCI = cfg.Config, *cfg
	if size, err := s.store.ImageSize(img.ID); err == nil && size > 0 {
		ii.Size = uint64(size)
	}
	for _, n := range ii.RepoTags {
		if n == s.pauseName() {
			ii.Pinned = true
		}
	}
	if pinned(s.cur().opts.PinnedImages, img.Names) {
		ii.Pinned = true
	}
	s.mu.Lock()
	s.configs[img.ID] = ii
	s.mu.Unlock()
	return ii, nil
}

func (s *Service) pauseName() string {
	named, err := reference.ParseNormalizedNamed(s.cur().opts.PauseImage)
	if err != nil {
		return ""
	}
	return reference.TagNameOnly(named).String()
}

func repoTags(img *storage.Image) []string {
	var out []string
	for _, n := range img.Names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			if _, ok := named.(reference.NamedTagged); ok {
				out = append(out, n)
			}
		}
	}
	return out
}

func repoDigests(img *storage.Image) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, n := range img.Names {
		named, err := reference.ParseNormalizedNamed(n)
		if err != nil {
			continue
		}
		if c, ok := named.(reference.Canonical); ok {
			add(c.Name() + "@" + c.Digest().String())
			continue
		}
		if img.Digest != "" {
			add(named.Name() + "@" + img.Digest.String())
		}
	}
	return out
}

// List returns every stored image.
func (s *Service) List() ([]*ImageInfo, error) {
	imgs, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*ImageInfo, 0, len(imgs))
	for i := range imgs {
		ii, err := s.info(&imgs[i])
		if err != nil {
			continue // an image being removed concurrently
		}
		out = append(out, ii)
	}
	return out, nil
}
