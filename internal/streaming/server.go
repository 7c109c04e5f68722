// Package streaming serves exec, attach and port-forward sessions for the
// CRI with k8s.io/cri-streaming, and adapts its runtime interface to
// cradle's: its own terminal-size type, exit codes as values, and port
// forwarding into a pod's network namespace.
package streaming

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/klog/v2"
)

// Streams are one session's standard streams; nil when not requested.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Tty    bool
	Resize <-chan runtime.TermSize
}

// Backend runs the sessions; the CRI server implements it.
type Backend interface {
	// Exec runs cmd in a running container and returns its exit code.
	Exec(ctx context.Context, containerID string, cmd []string, s Streams) (int, error)
	// Attach connects to a running container's main process.
	Attach(ctx context.Context, containerID string, s Streams) error
	// NetNS is the pinned network namespace of a ready sandbox, or "" when
	// the pod uses the host's.
	NetNS(sandboxID string) (string, error)
}

// Server is the streaming server.
type Server struct {
	lib  streaming.Server
	http *http.Server
	url  string
}

// Options configure the streaming server.
type Options struct {
	Addr string // "host:port"; port 0 picks a free port
	// TLSCertFile and TLSKeyFile, both set, make it serve https.
	TLSCertFile, TLSKeyFile string
	// IdleTimeout closes a session's connection that carried nothing for
	// this long; 0 keeps the library's default (4h).
	IdleTimeout time.Duration
}

// Start listens on o.Addr and serves in the background.
//
// cradle listens itself and serves the library's http.Handler, instead of
// calling the library's Start: Start listens only when it runs, and with
// port 0 it writes the real port into the URLs from its own goroutine,
// racing with the first GetExec. Listening first makes the URLs right from
// the start, and unlike picking a port and closing it, leaves no window in
// which another process could take the port.
func Start(o Options, b Backend) (*Server, error) {
	cfg := streaming.DefaultConfig
	scheme := "http"
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("streaming TLS certificate %s and key %s: %w", o.TLSCertFile, o.TLSKeyFile, err)
		}
		cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	if o.IdleTimeout > 0 {
		cfg.StreamIdleTimeout = o.IdleTimeout
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Addr, err)
	}
	// The library reports session errors through klog: send them to the
	// daemon's structured log instead of unformatted stderr.
	klog.SetSlogLogger(slog.Default().With("component", "streaming"))
	cfg.Addr = ln.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: scheme, Host: cfg.Addr}
	lib, err := streaming.NewServer(cfg, &adapter{b: b})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s := &Server{
		lib: lib,
		http: &http.Server{
			Handler:           lib,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
		},
		url: cfg.BaseURL.String(),
	}
	if cfg.TLSConfig != nil {
		ln = tls.NewListener(ln, cfg.TLSConfig)
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("streaming server stopped", "error", err)
		}
	}()
	return s, nil
}

// URL is the base URL the session URLs start with.
func (s *Server) URL() string { return s.url }

// GetExec returns the URL of a prepared exec session.
func (s *Server) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	return s.lib.GetExec(req)
}

// GetAttach returns the URL of a prepared attach session.
func (s *Server) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	return s.lib.GetAttach(req)
}

// GetPortForward returns the URL of a prepared port-forward session.
func (s *Server) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	return s.lib.GetPortForward(req)
}

// Close stops listening. Sessions in progress run on: their connections
// were taken over from the HTTP server and end with their processes.
func (s *Server) Close() {
	if err := s.http.Close(); err != nil {
		slog.Debug("close streaming server", "error", err)
	}
}
