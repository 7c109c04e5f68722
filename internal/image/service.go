// Package image pulls and stores images with containers/image and
// containers/storage, and gives containers their root filesystems and
// image volumes.
package image

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cradle-runtime/cradle/internal/observe"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// Options configure the image service.
type Options struct {
	Root            string // graph root
	RunRoot         string
	Driver          string           // "overlay", "vfs", or "" for overlay with a vfs fallback
	RegistriesConf  string           // containers-registries.conf(5)
	RegistriesDir   string           // containers-registries.d(5)
	PolicyPath      string           // containers-policy.json(5)
	PauseImage      string           // pinned: never reported as removable
	PinnedImages    []string         // image.pinned_images: also pinned (see pinned)
	ProgressTimeout time.Duration    // 0: pulls never time out for lack of progress
	Observer        observe.Observer // told of every pull; nil observes nothing
}

// Service is the image store.
type Service struct {
	settings atomic.Pointer[settings] // replaced whole by Reload
	obs      observe.Observer
	store    storage.Store

	mu        sync.Mutex
	pulls     map[string]*pull      // in-flight pulls by name and credentials
	running   int                   // pulls copying right now
	gcPending bool                  // a pull failed: sweep its layers when none runs
	configs   map[string]*ImageInfo // decoded image configs by ID
	removeMu  sync.Mutex            // one removal at a time: concurrent ones see the first's result
	volMu     sync.Mutex            // image volume mounts and their records

	warnNoPolicy sync.Once
}

// New opens the store and removes what an interrupted pull left behind.
func New(opts Options) (*Service, error) {
	st, err := openStore(opts)
	if err != nil {
		return nil, err
	}
	s := &Service{obs: observe.Or(opts.Observer), store: st, pulls: map[string]*pull{}, configs: map[string]*ImageInfo{}}
	s.settings.Store(&settings{opts: opts, sys: systemContext(opts)})
	// Nothing pulls yet: whatever is in the temp dir is a dead pull's.
	_ = os.RemoveAll(s.cur().sys.BigFilesTemporaryDir)
	if err := os.MkdirAll(s.cur().sys.BigFilesTemporaryDir, 0o700); err != nil {
		_, _ = st.Shutdown(false)
		return nil, fmt.Errorf("create image temp dir: %w", err)
	}
	s.removeOrphanLayers()
	s.reconcileVolumes()
	return s, nil
}

// settings are the options in force and the context built from them.
type settings struct {
	opts Options
	sys  *types.SystemContext
}

func (s *Service) cur() *settings { return s.settings.Load() }

// Reload puts the reloadable options in force: the pause image, the
// pinned image patterns, and the registries.conf, registries.d and policy
// paths. registries.conf is parsed
// again on the next use, even at an unchanged path; the policy is read at
// every pull anyway. The store's own options stay.
func (s *Service) Reload(pauseImage string, pinnedImages []string, registriesConf, registriesDir, policyPath string) {
	o := s.cur().opts
	o.PauseImage, o.RegistriesConf, o.RegistriesDir, o.PolicyPath = pauseImage, registriesConf, registriesDir, policyPath
	o.PinnedImages = slices.Clone(pinnedImages)
	pinsChanged := o.PauseImage != s.cur().opts.PauseImage || !slices.Equal(o.PinnedImages, s.cur().opts.PinnedImages)
	s.settings.Store(&settings{opts: o, sys: systemContext(o)})
	sysregistriesv2.InvalidateCache()
	if pinsChanged { // the cached image infos carry Pinned
		s.mu.Lock()
		clear(s.configs)
		s.mu.Unlock()
	}
}

// openStore uses overlay, falling back to vfs when overlay is unusable and
// the driver was not fixed by the operator. A store that fell back once
// keeps vfs, so its images stay visible.
func openStore(opts Options) (storage.Store, error) {
	driver := opts.Driver
	if driver == "" {
		driver = "overlay"
		if exists(filepath.Join(opts.Root, "vfs-layers")) && !exists(filepath.Join(opts.Root, "overlay-layers")) {
			driver = "vfs"
		}
	}
	so := storage.StoreOptions{RunRoot: opts.RunRoot, GraphRoot: opts.Root, GraphDriverName: driver}
	st, err := storage.GetStore(so)
	if err != nil && opts.Driver == "" && driver != "vfs" {
		slog.Warn("overlay storage unusable, falling back to vfs", "root", opts.Root, "error", err)
		so.GraphDriverName = "vfs"
		st, err = storage.GetStore(so)
	}
	if err != nil {
		return nil, fmt.Errorf("open image store at %s (driver %s): %w", opts.Root, so.GraphDriverName, err)
	}
	slog.Info("image store open", "root", opts.Root, "driver", st.GraphDriverName())
	return st, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func systemContext(opts Options) *types.SystemContext {
	confDir := filepath.Dir(opts.RegistriesConf)
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    opts.RegistriesConf,
		SystemRegistriesConfDirPath: filepath.Join(confDir, "registries.conf.d"),
		RegistriesDirPath:           opts.RegistriesDir,
		SignaturePolicyPath:         opts.PolicyPath,
		// Credentials come from the CRI request only, never from a user's
		// files: point at a file that is never created.
		AuthFilePath: filepath.Join(opts.Root, "no-auth.json"),
		// Short-name aliases come from registries.conf; the alias cache
		// that interactive tools write is the daemon's own.
		UserShortNameAliasConfPath:  filepath.Join(opts.Root, "short-name-aliases.conf"),
		DockerRegistryUserAgent:     "cradle",
		BigFilesTemporaryDir:        filepath.Join(opts.Root, "tmp"),
		OSChoice:                    "linux",
		DockerInsecureSkipTLSVerify: types.OptionalBoolUndefined,
	}
	// Per-registry TLS files (certs.d/HOST:PORT/ca.crt, client.cert,
	// client.key) live beside registries.conf, as /etc/containers/certs.d
	// does beside /etc/containers/registries.conf. For the system file keep
	// the library's search path, which also has /etc/docker/certs.d.
	if confDir != "/etc/containers" {
		sys.DockerPerHostCertDirPath = filepath.Join(confDir, "certs.d")
	}
	return sys
}

// Store exposes the underlying storage for the runtime's root filesystems.
func (s *Service) Store() storage.Store { return s.store }

// Driver is the graph driver in use.
func (s *Service) Driver() string { return s.store.GraphDriverName() }

// Shutdown unmounts what the store mounted and no container uses.
func (s *Service) Shutdown() {
	if _, err := s.store.Shutdown(false); err != nil {
		slog.Warn("image store shutdown", "error", err)
	}
}

func (s *Service) policyContext() (*signature.PolicyContext, error) {
	if _, err := os.Stat(s.cur().opts.PolicyPath); errors.Is(err, os.ErrNotExist) {
		// No policy.json on this host (containers-common is not installed):
		// use the one containers-common ships, which accepts any image, so
		// that cradle works with its embedded defaults.
		s.warnNoPolicy.Do(func() {
			slog.Warn("signature policy file missing; accepting any image", "path", s.cur().opts.PolicyPath)
		})
		return signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	}
	policy, err := signature.DefaultPolicy(s.cur().sys)
	if err != nil {
		return nil, fmt.Errorf("load signature policy %s: %w", s.cur().opts.PolicyPath, err)
	}
	return signature.NewPolicyContext(policy)
}

// systemContext is the pull's context: the service's plus the request's
// credentials.
func (s *Service) systemContext(auth *Auth) *types.SystemContext {
	sys := *s.cur().sys
	if auth != nil {
		if auth.Username != "" || auth.Password != "" || auth.IdentityToken != "" {
			sys.DockerAuthConfig = &types.DockerAuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken}
		}
		if auth.RegistryToken != "" {
			sys.DockerBearerRegistryToken = auth.RegistryToken
		}
	}
	return &sys
}
