// Package server translates the CRI into calls on the domain packages. It
// holds no kernel or runtime logic of its own.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/metrics"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/nri"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/runtime/conmon"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/stats"
	"github.com/cradle-runtime/cradle/internal/store"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Server implements the CRI runtime and image services.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	cfg      *config.Config
	images   *image.Service
	net      *network.Manager
	pins     *netns.Manager
	runtimes map[string]runtime.Runtime
	bundles  runtime.Bundles // one bundle directory per container
	monitor  conmon.Options  // shared by the conmon handlers
	defaults ocispec.Defaults

	sandboxes  *store.Index[*sandbox.Sandbox]
	containers *store.Index[*container.Container]
	sbNames    *store.Names
	ctrNames   *store.Names
	sbRecords  *store.Dir
	ctrRecords *store.Dir
	inflight   singleflight.Group // RunPodSandbox by pod name, for kubelet retries
	stopWatch  func()
	grpc       *grpc.Server
	stats      *stats.Collector
	events     eventHub // events.go
	stream     streamState
	nri        *nri.NRI // nil when disabled; its methods accept nil
	metrics    *metrics.Metrics
	stopMetric func()
}

// New builds the server and restores state from disk.
func New(cfg *config.Config) (*Server, error) {
	s := &Server{
		cfg:      cfg,
		runtimes: map[string]runtime.Runtime{},
		pins: netns.NewManager(netns.DefaultNetDir, filepath.Join(cfg.RunRoot, "ns"),
			filepath.Join(cfg.Root, "netns-owned")),
		bundles:    runtime.Bundles(filepath.Join(cfg.RunRoot, "containers")),
		sandboxes:  store.NewIndex[*sandbox.Sandbox](),
		containers: store.NewIndex[*container.Container](),
		sbNames:    store.NewNames(),
		ctrNames:   store.NewNames(),
		monitor: conmon.Options{
			Conmon: cfg.Runtime.Conmon, ExitDir: filepath.Join(cfg.RunRoot, "exits"),
			SocketDir:     filepath.Join(cfg.RunRoot, "socks"),
			SystemdCgroup: cfg.Runtime.CgroupDriver == config.CgroupDriverSystemd,
		},
	}
	for _, d := range []string{cfg.Root, cfg.RunRoot, s.monitor.ExitDir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// Pods with user namespaces reach their root filesystems through the
	// runroot: it must be traversable, not listable, by unprivileged IDs.
	if err := os.Chmod(cfg.RunRoot, 0o711); err != nil {
		return nil, fmt.Errorf("chmod %s: %w", cfg.RunRoot, err)
	}
	var err error
	if s.sbRecords, err = store.Open(filepath.Join(cfg.Root, "records", "sandboxes")); err != nil {
		return nil, err
	}
	if s.ctrRecords, err = store.Open(filepath.Join(cfg.Root, "records", "containers")); err != nil {
		return nil, err
	}
	for _, name := range cfg.HandlerNames() {
		h, _ := cfg.Handler(name)
		if h.Type != config.HandlerTypeOCI {
			slog.Warn("runtime handler type not supported yet; skipping", "handler", name, "type", h.Type)
			continue
		}
		s.runtimes[name] = conmon.New(context.Background(), name, h.Path, cfg.HandlerRoot(name), s.monitor)
	}
	ulimits, err := cfg.Runtime.Ulimits()
	if err != nil {
		return nil, err
	}
	s.defaults = ocispec.Defaults{
		CgroupDriver:   cfg.Runtime.CgroupDriver,
		CgroupParent:   cfg.Runtime.CgroupParent,
		Capabilities:   cfg.Runtime.Capabilities(),
		Bounding:       ocispec.BoundingSet(),
		MinOOMScoreAdj: ocispec.OwnOOMScoreAdj(),
		PidsLimit:      cfg.Runtime.PidsLimit,
	}
	for _, u := range ulimits {
		s.defaults.Rlimits = append(s.defaults.Rlimits, rlimit(u))
	}
	s.images, err = image.New(image.Options{
		Root: filepath.Join(cfg.Root, "storage"), RunRoot: filepath.Join(cfg.RunRoot, "storage"),
		Driver: cfg.Image.StorageDriver, RegistriesConf: cfg.Image.RegistriesConf,
		RegistriesDir: cfg.Image.RegistriesD, PolicyPath: cfg.Image.SignaturePolicy,
		PauseImage: cfg.Image.PauseImage, ProgressTimeout: cfg.Image.PullProgressTimeout.Std(),
	})
	if err != nil {
		return nil, err
	}
	s.net, err = network.New(network.Options{
		ConfDir: cfg.Network.CNIConfDir, PluginDirs: cfg.Network.CNIPluginDirs,
		CacheDir: cfg.CNICacheDir(), NetworkName: cfg.Network.NetworkName,
	})
	if err != nil {
		s.images.Shutdown()
		return nil, err
	}
	// Built before the exit watcher, which relays exits to it; it serves
	// plugins only from Start, after restore.
	if s.nri, err = nri.New(cfg.NRI, nriRuntime{s}); err != nil {
		s.Close()
		return nil, err
	}
	// Watch exits before restoring, so none that happen meanwhile is missed.
	s.stopWatch, err = conmon.WatchExits(s.monitor, s.bundles, s.onExit)
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.restore(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.startStreaming(); err != nil {
		s.Close()
		return nil, err
	}
	s.stats = stats.NewCollector(statsSource{s}, cfg.Stats.CollectionPeriod.Std())
	s.stats.Start()
	if err := s.startNRI(); err != nil {
		s.Close()
		return nil, err
	}
	s.metrics = metrics.New(s.stateCounts)
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
	s.grpc = grpc.NewServer(grpc.ChainUnaryInterceptor(s.metrics.Unary, recoverUnary, logUnary))
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
	s.nri.Stop()
	s.stopStreaming()
	if s.stats != nil {
		s.stats.Stop()
	}
	if s.stopWatch != nil {
		s.stopWatch()
	}
	if s.net != nil {
		s.net.Close()
	}
	if s.images != nil {
		s.images.Shutdown()
	}
}

// stateCounts counts pods and containers by state, for the metrics.
func (s *Server) stateCounts() (sandboxes, containers map[string]int) {
	sandboxes, containers = map[string]int{}, map[string]int{}
	for _, sb := range s.sandboxes.List() {
		sandboxes[string(sb.Get().State)]++
	}
	for _, c := range s.containers.List() {
		if r := c.Get(); !r.Infra {
			containers[r.State.String()]++
		}
	}
	return sandboxes, containers
}

func (s *Server) runtimeFor(handler string) (runtime.Runtime, string, error) {
	if handler == "" {
		handler = s.cfg.Runtime.DefaultHandler
	}
	rt, ok := s.runtimes[handler]
	if !ok {
		return nil, handler, fmt.Errorf("runtime_handler %q is not configured", handler)
	}
	return rt, handler, nil
}

func (s *Server) putSandbox(r sandbox.Record) error     { return s.sbRecords.Put(r.ID, r) }
func (s *Server) putContainer(r container.Record) error { return s.ctrRecords.Put(r.ID, r) }
