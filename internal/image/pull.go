package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/observe"
	"go.opentelemetry.io/otel/attribute"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	istorage "go.podman.io/image/v5/storage"
)

// Auth is the registry credential from a CRI AuthConfig.
type Auth struct {
	Username, Password, IdentityToken, RegistryToken string
}

// key identifies the credential without keeping it readable.
func (a *Auth) key() string {
	if a == nil {
		return ""
	}
	h := sha256.Sum256([]byte(a.Username + "\x00" + a.Password + "\x00" + a.IdentityToken + "\x00" + a.RegistryToken))
	return hex.EncodeToString(h[:8])
}

// PullContext says who asked for a pull, for the logs.
type PullContext struct {
	Pod string // namespace/name of the pod the image is for, if any
}

// pull is one transfer shared by every request for the same name with the
// same credentials. It runs detached from the requests and is cancelled
// only when the last one waiting gives up.
type pull struct {
	done    chan struct{}
	img     *ImageInfo
	err     error
	waiters int
	cancel  context.CancelFunc
}

// Pull fetches ref for the daemon itself (the pause image).
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (*ImageInfo, error) {
	return s.PullFor(ctx, ref, auth, PullContext{})
}

// PullFor fetches ref and returns the stored image. A short name is tried
// in each registry registries.conf gives for it, in order.
func (s *Service) PullFor(ctx context.Context, ref string, auth *Auth, pc PullContext) (*ImageInfo, error) {
	candidates, err := s.pullCandidates(ref)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, named := range candidates {
		img, err := s.pullShared(ctx, named, auth, pc)
		if err == nil {
			return img, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("pull %s: no candidate succeeded: %w", ref, errors.Join(errs...))
}

func (s *Service) pullCandidates(ref string) ([]reference.Named, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidReference)
	}
	if isHexID(ref) && strings.HasPrefix(ref, "sha256:") {
		return nil, fmt.Errorf("%w %q: an image ID cannot be pulled", ErrInvalidReference, ref)
	}
	// The config may change while the daemon runs: read it afresh.
	sysregistriesv2.InvalidateCache()
	if !shortnames.IsShortName(ref) {
		named, err := reference.ParseNormalizedNamed(ref)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
		}
		return []reference.Named{reference.TagNameOnly(named)}, nil
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, ref, err)
	}
	resolved, err := shortnames.Resolve(s.cur().sys, ref)
	if err != nil {
		return nil, fmt.Errorf("resolve short name %q with %s: %w", ref, s.cur().opts.RegistriesConf, err)
	}
	out := make([]reference.Named, 0, len(resolved.PullCandidates))
	for _, c := range resolved.PullCandidates {
		out = append(out, c.Value)
	}
	return out, nil
}

func (s *Service) pullShared(ctx context.Context, named reference.Named, auth *Auth, pc PullContext) (*ImageInfo, error) {
	key := named.String() + "\x00" + auth.key()
	s.mu.Lock()
	p, ok := s.pulls[key]
	if !ok {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p = &pull{done: make(chan struct{}), cancel: cancel}
		s.pulls[key] = p
		s.running++
		go s.runPull(pctx, key, p, named, auth, pc)
	} else {
		slog.Info("joining pull in progress", "image", named.String(), "pod", pc.Pod)
	}
	p.waiters++
	s.mu.Unlock()

	select {
	case <-p.done:
		return p.img, p.err
	case <-ctx.Done():
		s.mu.Lock()
		p.waiters--
		if p.waiters == 0 {
			// Nobody wants it any more; a later request starts afresh.
			p.cancel()
			if s.pulls[key] == p {
				delete(s.pulls, key)
			}
		}
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (s *Service) runPull(ctx context.Context, key string, p *pull, named reference.Named, auth *Auth, pc PullContext) {
	img, err := s.pullOne(ctx, named, auth, pc)
	s.mu.Lock()
	if s.pulls[key] == p {
		delete(s.pulls, key)
	}
	s.running--
	if err != nil {
		s.gcPending = true
	}
	sweep := s.running == 0 && s.gcPending
	if sweep {
		s.gcPending = false
	}
	s.mu.Unlock()
	// Before anyone hears of the failure, so nothing of it is left then.
	if sweep {
		s.removeOrphanLayers()
	}
	p.img, p.err = img, err
	close(p.done)
	p.cancel()
}

func (s *Service) pullOne(ctx context.Context, named reference.Named, auth *Auth, pc PullContext) (_ *ImageInfo, retErr error) {
	start := time.Now()
	var pulled uint64
	ctx, span := observe.StartSpan(ctx, "image pull", attribute.String("image.name", named.String()))
	defer func() {
		observe.EndSpan(span, retErr)
		// By host alone: a label per reference would grow without bound.
		s.obs.ImagePulled(reference.Domain(named), pulled, time.Since(start), retErr)
	}()
	where := s.registryDesc(named)
	fail := func(err error) error {
		return fmt.Errorf("pull %s from %s: %w", named, where, classifyPullError(err))
	}
	if reg, err := sysregistriesv2.FindRegistry(s.cur().sys, named.Name()); err != nil {
		return nil, fail(fmt.Errorf("read %s: %w", s.cur().opts.RegistriesConf, err))
	} else if reg != nil && reg.Blocked {
		return nil, fail(fmt.Errorf("%w: registry %s is blocked in %s", ErrDenied, reg.Prefix, s.cur().opts.RegistriesConf))
	}
	srcRef, err := docker.NewReference(named)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrInvalidReference, named, err)
	}
	dstRef, err := istorage.Transport.ParseStoreReference(s.store, named.String())
	if err != nil {
		return nil, fmt.Errorf("storage reference for %s: %w", named, err)
	}
	policy, err := s.policyContext()
	if err != nil {
		return nil, err
	}
	defer func() { _ = policy.Destroy() }()

	log := slog.With("image", named.String(), "registry", where)
	if pc.Pod != "" {
		log = log.With("pod", pc.Pod)
	}
	w := watchProgress(ctx, s.cur().opts.ProgressTimeout, log)
	defer w.stop()
	log.Info("pulling image")
	sys := s.systemContext(auth)
	_, err = copy.Image(w.ctx, policy, dstRef, srcRef, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		ProgressInterval: time.Second,
		Progress:         w.events,
	})
	// Read before the cause: final stops the watchdog, which cancels w.ctx.
	cause := context.Cause(w.ctx)
	bytes, blobs := w.final(log)
	pulled = bytes
	if err != nil {
		if cause != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w (%w)", cause, err)
		}
		log.Warn("pull failed", "duration", time.Since(start).Round(time.Millisecond), "error", err)
		return nil, fail(err)
	}
	img, err := istorage.Transport.GetStoreImage(s.store, dstRef)
	if err != nil {
		return nil, fmt.Errorf("look up pulled image %s: %w", named, err)
	}
	log.Info("pulled image", "id", img.ID, "duration", time.Since(start).Round(time.Millisecond), "bytes", bytes, "blobs", blobs)
	return s.info(img)
}

// registryDesc names the registry of named and, when registries.conf
// sends the pull elsewhere, where to.
func (s *Service) registryDesc(named reference.Named) string {
	domain := reference.Domain(named)
	reg, err := sysregistriesv2.FindRegistry(s.cur().sys, named.Name())
	if err != nil || reg == nil {
		return "registry " + domain
	}
	var locs []string
	for _, m := range reg.Mirrors {
		locs = append(locs, m.Location)
	}
	if reg.Location != "" && reg.Location != domain {
		locs = append(locs, reg.Location)
	}
	if len(locs) == 0 {
		return "registry " + domain
	}
	return fmt.Sprintf("registry %s (at %s)", domain, strings.Join(locs, ", "))
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
