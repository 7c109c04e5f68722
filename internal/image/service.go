// Package image pulls and stores images with containers/image and
// containers/storage, and gives containers their root filesystems.
package image

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
)

// Sentinel errors that the server maps to gRPC codes.
var (
	ErrNotFound         = errors.New("image not found")
	ErrInvalidReference = errors.New("invalid image reference")
	ErrInUse            = errors.New("image is in use")
)

// Options configure the image service.
type Options struct {
	Root            string // graph root
	RunRoot         string
	Driver          string // "overlay", "vfs", or "" for overlay with a vfs fallback
	RegistriesConf  string
	RegistriesDir   string
	PolicyPath      string
	PauseImage      string
	ProgressTimeout time.Duration
}

// Service is the image store.
type Service struct {
	opts  Options
	store storage.Store
	sys   *types.SystemContext

	mu      sync.Mutex
	pulls   map[string]*pull      // in-flight pulls by resolved name
	configs map[string]*ImageInfo // decoded image configs by ID
}

func init() {
	// containers/storage re-executes itself for some operations.
	if reexec.Init() {
		os.Exit(0)
	}
}

// New opens the store, falling back to vfs when overlay is unusable and the
// driver was not fixed by the operator.
func New(opts Options) (*Service, error) {
	driver := opts.Driver
	if driver == "" {
		driver = "overlay"
	}
	so := storage.StoreOptions{
		RunRoot:         opts.RunRoot,
		GraphRoot:       opts.Root,
		GraphDriverName: driver,
	}
	st, err := storage.GetStore(so)
	if err != nil && opts.Driver == "" {
		slog.Warn("overlay storage unusable, falling back to vfs", "error", err)
		so.GraphDriverName = "vfs"
		st, err = storage.GetStore(so)
	}
	if err != nil {
		return nil, fmt.Errorf("open image store at %s (driver %s): %w", opts.Root, so.GraphDriverName, err)
	}
	sys := &types.SystemContext{
		SystemRegistriesConfPath:    opts.RegistriesConf,
		SystemRegistriesConfDirPath: filepath.Join(filepath.Dir(opts.RegistriesConf), "registries.conf.d"),
		RegistriesDirPath:           opts.RegistriesDir,
		SignaturePolicyPath:         opts.PolicyPath,
		// Credentials come from the CRI request only, never from a user's
		// files: point at a file that is never created.
		AuthFilePath:                filepath.Join(opts.Root, "no-auth.json"),
		DockerRegistryUserAgent:     "cradle",
		ShortNameMode:               nil,
		BigFilesTemporaryDir:        filepath.Join(opts.Root, "tmp"),
		OSChoice:                    "linux",
		DockerInsecureSkipTLSVerify: types.OptionalBoolUndefined,
	}
	if err := os.MkdirAll(sys.BigFilesTemporaryDir, 0o700); err != nil {
		return nil, fmt.Errorf("create image temp dir: %w", err)
	}
	return &Service{opts: opts, store: st, sys: sys, pulls: map[string]*pull{}, configs: map[string]*ImageInfo{}}, nil
}

// Store exposes the underlying storage for the runtime's root filesystems.
func (s *Service) Store() storage.Store { return s.store }

// Driver is the graph driver in use.
func (s *Service) Driver() string { return s.store.GraphDriverName() }

// Shutdown unmounts what the store mounted.
func (s *Service) Shutdown() {
	if _, err := s.store.Shutdown(false); err != nil {
		slog.Warn("image store shutdown", "error", err)
	}
}

func (s *Service) policyContext() (*signature.PolicyContext, error) {
	policy, err := signature.DefaultPolicy(s.sys)
	if err != nil {
		return nil, fmt.Errorf("load signature policy %s: %w", s.opts.PolicyPath, err)
	}
	return signature.NewPolicyContext(policy)
}

func (s *Service) systemContext(auth *Auth) *types.SystemContext {
	sys := *s.sys
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
