package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
)

// Auth is the registry credential from a CRI AuthConfig.
type Auth struct {
	Username, Password, IdentityToken, RegistryToken string
}

type pull struct {
	done chan struct{}
	img  *ImageInfo
	err  error
}

// Pull fetches ref and returns the stored image. Concurrent pulls of the
// same name share one transfer.
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (*ImageInfo, error) {
	candidates, err := s.pullCandidates(ref)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, named := range candidates {
		img, err := s.pullDedup(ctx, named, auth)
		if err == nil {
			return img, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (s *Service) pullCandidates(ref string) ([]reference.Named, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	if !shortnames.IsShortName(ref) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
		}
		return []reference.Named{reference.TagNameOnly(named)}, nil
	}
	resolved, err := shortnames.Resolve(s.sys, ref)
	if err != nil {
		if _, perr := reference.ParseNormalizedNamed(ref); perr != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, perr)
		}
		return nil, fmt.Errorf("resolve short name %q: %w", ref, err)
	}
	out := make([]reference.Named, 0, len(resolved.PullCandidates))
	for _, c := range resolved.PullCandidates {
		out = append(out, c.Value)
	}
	return out, nil
}

func (s *Service) pullDedup(ctx context.Context, named reference.Named, auth *Auth) (*ImageInfo, error) {
	key := named.String()
	s.mu.Lock()
	if p, ok := s.pulls[key]; ok {
		s.mu.Unlock()
		select {
		case <-p.done:
			return p.img, p.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &pull{done: make(chan struct{})}
	s.pulls[key] = p
	s.mu.Unlock()

	p.img, p.err = s.pullOne(ctx, named, auth)
	s.mu.Lock()
	delete(s.pulls, key)
	s.mu.Unlock()
	close(p.done)
	return p.img, p.err
}

func (s *Service) pullOne(ctx context.Context, named reference.Named, auth *Auth) (*ImageInfo, error) {
	start := time.Now()
	srcRef, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, named, err)
	}
	dstRef, err := istorage.Transport.ParseStoreReference(s.store, named.String())
	if err != nil {
		return nil, fmt.Errorf("storage reference for %s: %w", named, err)
	}
	pc, err := s.policyContext()
	if err != nil {
		return nil, err
	}
	defer pc.Destroy()

	timeout := s.opts.ProgressTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	pctx, progress, stop := withProgressTimeout(ctx, timeout)
	defer stop()
	sys := s.systemContext(auth)
	slog.Info("pulling image", "image", named.String())
	_, err = copy.Image(pctx, pc, dstRef, srcRef, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		ProgressInterval: time.Second,
		Progress:         progress,
	})
	if err != nil {
		if cause := context.Cause(pctx); cause != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return nil, fmt.Errorf("pull %s from registry %s: %w", named, reference.Domain(named), err)
	}
	img, err := istorage.Transport.GetStoreImage(s.store, dstRef)
	if err != nil {
		return nil, fmt.Errorf("look up pulled image %s: %w", named, err)
	}
	slog.Info("pulled image", "image", named.String(), "id", img.ID, "duration", time.Since(start).Round(time.Millisecond))
	return s.info(img)
}

// withProgressTimeout cancels ctx when no progress was reported for d. It
// keeps draining the channel until stopped, so copy never blocks on it.
func withProgressTimeout(ctx context.Context, d time.Duration) (context.Context, chan types.ProgressProperties, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	ch := make(chan types.ProgressProperties, 16)
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case p := <-ch:
				if p.Event == types.ProgressEventDone || p.Event == types.ProgressEventSkipped {
					slog.Debug("pull progress", "artifact", p.Artifact.Digest.String(), "bytes", p.Offset)
				}
				t.Reset(d)
			case <-t.C:
				cancel(fmt.Errorf("no pull progress for %s", d))
			}
		}
	}()
	return ctx, ch, func() { close(done); cancel(nil) }
}

// isHexID reports whether s looks like a full or partial image ID.
func isHexID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 3 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
