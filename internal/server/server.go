// Package server translates the CRI into calls on the domain packages. It
// holds no kernel or runtime logic of its own.
package server

import (
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/lifecycle"
	"github.com/cradle-runtime/cradle/internal/metrics"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/stats"
	"github.com/cradle-runtime/cradle/internal/tracing"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Server implements the CRI runtime and image services.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg        *config.Config
	images     *image.Service
	net        *network.Manager
	lc         *lifecycle.Manager
	grpc       *grpc.Server
	stats      *stats.Collector
	events     eventHub // events.go
	stream     streamState
	metrics    *metrics.Metrics
	stopMetric func()
	tracing    *tracing.Tracing // nil when off
	reloadMu   sync.Mutex       // one Reload at a time
}

// New builds the server and restores state from disk.
func New(cfg *config.Config) (*Server, error) {
	s := &Server{cfg: cfg}
	if cfg.Tracing.Endpoint != "" {
		t, err := tracing.Start(cfg.Tracing)
		if err != nil {
			return nil, err
		}
		s.tracing = t
	}
	// First, so every domain package reports to it; it reads the states
	// only at a scrape, which the endpoint started last can serve.
	s.metrics = metrics.New(func() (map[string]int, map[string]int) { return s.lc.StateCounts() })
	var err error
	s.images, err = image.New(image.Options{
		Root: filepath.Join(cfg.Root, "storage"), RunRoot: filepath.Join(cfg.RunRoot, "storage"),
		Driver: cfg.Image.StorageDriver, RegistriesConf: cfg.Image.RegistriesConf,
		RegistriesDir: cfg.Image.RegistriesD, PolicyPath: cfg.Image.SignaturePolicy,
		PauseImage: cfg.Image.PauseImage, PinnedImages: cfg.Image.PinnedImages, ProgressTimeout: cfg.Image.PullProgressTimeout.Std(),
		Observer: s.metrics,
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	s.net, err = network.New(network.Options{
		ConfDir: cfg.Network.CNIConfDir, PluginDirs: cfg.Network.CNIPluginDirs,
		CacheDir: cfg.CNICacheDir(), NetworkName: cfg.Network.NetworkName, Observer: s.metrics,
	})
	if err != nil {
		s.images.Shutdown()
		return nil, err
	}
	s.lc, err = lifecycle.New(lifecycle.Options{Config: cfg, Images: s.images, Net: s.net, Event: s.emit, SandboxEvent: s.emitSandbox, Observer: s.metrics})
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startStreaming(); err != nil {
		s.Close()
		return nil, err
	}
	s.stats = stats.NewCollector(statsSource{s}, cfg.Stats.CollectionPeriod.Std())
	s.stats.Start()
	if err := s.lc.StartNRI(); err != nil {
		s.Close()
		return nil, err
	}
	if a := cfg.Metrics.Address; a != "" {
		if s.stopMetric, err = s.metrics.Serve(a, cfg.Metrics.Pprof); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Serve registers the CRI services and serves on l until Stop.
func (s *Server) Serve(l net.Listener) error {
	opts := []grpc.ServerOption{grpc.ChainUnaryInterceptor(s.metrics.Unary, recoverUnary, logUnary)}
	if s.tracing != nil {
		opts = append(opts, s.tracing.ServerOption())
	}
	s.grpc = grpc.NewServer(opts...)
	runtimeapi.RegisterRuntimeServiceServer(s.grpc, s)
	runtimeapi.RegisterImageServiceServer(s.grpc, s)
	return s.grpc.Serve(l)
}

// Shutdown finishes requests in flight within grace, then closes. The
// containers keep running: conmon outlives the daemon.
func (s *Server) Shutdown(grace time.Duration) {
	s.events.close() // event streams never end by themselves
	if s.grpc != nil {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		slog.Debug("draining requests in flight", "grace", grace)
		select {
		case <-done:
		case <-time.After(grace):
			s.grpc.Stop()
		}
	}
	s.Close()
}

// Close releases the daemon's own resources.
func (s *Server) Close() {
	if s.stopMetric != nil {
		s.stopMetric()
	}
	s.stopStreaming()
	if s.stats != nil {
		s.stats.Stop()
	}
	if s.lc != nil {
		s.lc.Close()
	}
	if s.net != nil {
		s.net.Close()
	}
	if s.images != nil {
		s.images.Shutdown()
	}
	// Last, so the spans of everything above are flushed.
	if s.tracing != nil {
		s.tracing.Shutdown(5 * time.Second)
	}
}
