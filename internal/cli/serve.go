package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/server"
	"github.com/cradle-runtime/cradle/internal/version"
	"github.com/spf13/cobra"
)

// shutdownGrace bounds how long SIGTERM waits for requests in flight.
const shutdownGrace = 10 * time.Second

func serveCmd() *cobra.Command {
	var o overrides
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the CRI daemon",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sd := takeNotifySocket()
			// Before anything else: an early SIGHUP must not kill the
			// daemon; it is handled once the server exists.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			cfg, err := o.load()
			if err != nil {
				return err
			}
			setupLogging(os.Stderr, cfg.LogLevel, cfg.LogFormat)
			go dumpOnSIGUSR1(filepath.Join(cfg.RunRoot, "dumps"))
			return serve(cfg, sd, func(srv *server.Server) { go reloadOnSIGHUP(hup, &o, srv) })
		},
	}
	o.register(cmd)
	return cmd
}

// serve runs the daemon; started is called once the server is built.
func serve(cfg *config.Config, sd *notifier, started func(*server.Server)) error {
	if err := runtime.EnableSubreaper(); err != nil {
		slog.Warn("cannot become a child subreaper; exited monitors are left to PID 1", "error", err)
	}
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	l, err := listen(cfg.ListenPath())
	if err != nil {
		srv.Close()
		return err
	}
	started(srv)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		sig := <-sigs
		sd.notify(notifyStopping)
		slog.Info("shutting down; containers keep running", "signal", sig.String())
		srv.Shutdown(shutdownGrace)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	// Ready once a CRI call is answered, not merely when the socket exists.
	if waitServing(cfg.ListenPath(), served) {
		slog.Info("cradle serving", "version", version.Version, "listen", cfg.Listen, "root", cfg.Root, "runroot", cfg.RunRoot)
		sd.notify(notifyReady)
	}
	if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	// Serve returns as soon as shutdown begins; wait until it is complete.
	<-stopped
	_ = os.Remove(cfg.ListenPath())
	slog.Info("cradle stopped")
	return nil
}

// listen replaces a stale socket and opens the CRI socket with mode 0660.
func listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket dir: %w", err)
	}
	if serving(path) {
		return nil, fmt.Errorf("another daemon is serving on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, config.ListenSocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

// waitServing returns true once the daemon's own socket answers a CRI
// call, or false if Serve returned first (its error is put back).
func waitServing(path string, served chan error) bool {
	for {
		select {
		case err := <-served:
			served <- err
			return false
		default:
		}
		if serving(path) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serving reports whether a CRI server answers on path. A connect alone is
// not enough: after a crash, a child caught between fork and exec can hold
// the dead daemon's listening socket for a moment, and connections then
// queue without ever being served.
func serving(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false // nothing listens: a stale socket file
	}
	c.Close()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = runtimeapi.NewRuntimeServiceClient(conn).Version(ctx, &runtimeapi.VersionRequest{})
	return err == nil
}

// reloadOnSIGHUP re-reads the config files and has the server apply what
// is safe to change in a running daemon (see Server.Reload); the log level
// is set here. The CNI config is watched on its own; everything else needs
// a restart, which keeps the containers.
func reloadOnSIGHUP(hup <-chan os.Signal, o *overrides, srv *server.Server) {
	for range hup {
		next, err := o.load()
		if err == nil {
			next, err = srv.Reload(next)
		}
		if err != nil {
			slog.Error("config reload failed; keeping the running config", "error", err)
			continue
		}
		logLevel.Set(parseLevel(next.LogLevel))
		setLogrusLevel(logLevel.Level())
	}
}
