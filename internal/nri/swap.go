package nri

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/version"
)

// swapLock lets many users of the NRI instance in force run at once and a
// reload replace it when none does. Unlike sync.RWMutex it prefers users:
// one may take it again while a replacement waits (a hook's eviction stops
// a container, whose StopContainer hook takes it too), which would
// deadlock behind a waiting writer there. A replacement waits for a moment
// with no user; reloads are rare and uses short.
type swapLock struct {
	mu      sync.Mutex
	cond    sync.Cond
	users   int
	writing bool
	waiting int // replacements waiting for the lock
}

func (l *swapLock) init() { l.cond.L = &l.mu }

func (l *swapLock) rlock() {
	l.mu.Lock()
	for l.writing {
		l.cond.Wait()
	}
	l.users++
	l.mu.Unlock()
}

func (l *swapLock) runlock() {
	l.mu.Lock()
	l.users--
	if l.users == 0 {
		l.cond.Broadcast()
	}
	l.mu.Unlock()
}

func (l *swapLock) lock() {
	l.mu.Lock()
	l.waiting++
	for l.writing || l.users > 0 {
		l.cond.Wait()
	}
	l.waiting--
	l.writing = true
	l.mu.Unlock()
}

func (l *swapLock) unlock() {
	l.mu.Lock()
	l.writing = false
	l.cond.Broadcast()
	l.mu.Unlock()
}

// instance is one adaptation with the settings it was built from.
type instance struct {
	a     *adaptation.Adaptation
	cfg   config.NRIConfig
	relay *relay // the public socket, while started

	// While deferring (a reload starts the instance holding the swap lock),
	// synchronization updates are kept for after the swap: applying one
	// takes a container's operation lock, which a CRI call waiting for the
	// swap lock may hold.
	mu        sync.Mutex
	deferring bool
	deferred  []*api.ContainerUpdate
}

func (n *NRI) newInstance(cfg config.NRIConfig) (*instance, error) {
	in := &instance{cfg: cfg}
	a, err := adaptation.New("cradle", version.Version,
		func(ctx context.Context, cb adaptation.SyncCB) error { return n.sync(ctx, in, cb) }, n.update,
		adaptation.WithPluginPath(cfg.PluginPath),
		adaptation.WithPluginConfigPath(cfg.PluginConfigPath),
		adaptation.WithSocketPath(privateSocket(cfg.SocketPath)),
	)
	if err != nil {
		return nil, fmt.Errorf("set up NRI: %w", err)
	}
	in.a = a
	return in, nil
}

// start serves the instance; on error nothing of it runs.
func (in *instance) start() error {
	if err := in.a.Start(); err != nil {
		// Start leaves pre-installed plugins running when the listener fails.
		in.a.Stop()
		return fmt.Errorf("start NRI: %w", err)
	}
	r, err := startRelay(in.cfg.SocketPath)
	if err != nil {
		in.a.Stop()
		return fmt.Errorf("start NRI: %w", err)
	}
	in.relay = r
	return nil
}

// stop disconnects every plugin and removes the sockets.
func (in *instance) stop() {
	if in.relay != nil {
		in.relay.close()
	}
	in.a.Stop()
}

// sameSettings reports whether running in serves cfg (nil: disabled).
func sameSettings(in *instance, cfg config.NRIConfig) bool {
	if in == nil || !cfg.Enable {
		return in == nil && !cfg.Enable
	}
	return in.cfg.SocketPath == cfg.SocketPath && in.cfg.PluginPath == cfg.PluginPath &&
		in.cfg.PluginConfigPath == cfg.PluginConfigPath
}

// Reconfigure puts cfg in force: it starts NRI, stops it, or restarts it
// with new paths, as at daemon start and stop. CRI calls wait meanwhile,
// so each uses the old instance or the new one, never one half stopped.
// On error the previous settings stay in force: a socket directory that
// cannot be made fails before anything stops; a start that fails brings
// the previous instance back (its plugins restarted), and only if that
// fails too is NRI left off, logged as an error.
func (n *NRI) Reconfigure(cfg config.NRIConfig) error {
	SetTimeouts(cfg)
	old := n.cur.Load()
	if sameSettings(old, cfg) {
		return nil
	}
	var next *instance
	if cfg.Enable {
		if err := os.MkdirAll(filepath.Dir(cfg.SocketPath), 0o700); err != nil {
			return fmt.Errorf("nri.socket_path: %w", err)
		}
		var err error
		if next, err = n.newInstance(cfg); err != nil {
			return err
		}
	}
	n.swap.lock()
	if old != nil {
		old.stop()
	}
	var err error
	if next != nil {
		next.deferring = true
		if err = next.start(); err != nil {
			next = n.restore(old)
		}
	}
	n.cur.Store(next)
	n.swap.unlock()
	if next != nil {
		n.applyDeferred(next)
	}
	return err
}

// restore restarts old's settings after a failed restart; nil if there
// were none or they fail now.
func (n *NRI) restore(old *instance) *instance {
	if old == nil {
		return nil
	}
	in, err := n.newInstance(old.cfg)
	if err == nil {
		in.deferring = true
		err = in.start()
	}
	if err != nil {
		slog.Error("NRI is off: restarting it with its previous settings failed", "socket", old.cfg.SocketPath, "error", err)
		return nil
	}
	slog.Warn("NRI restarted with its previous settings", "socket", old.cfg.SocketPath)
	return in
}

// applyDeferred applies the synchronization updates the start of in kept.
func (n *NRI) applyDeferred(in *instance) {
	in.mu.Lock()
	updates := in.deferred
	in.deferred, in.deferring = nil, false
	in.mu.Unlock()
	if len(updates) == 0 {
		return
	}
	if failed, err := n.rt.Update(context.Background(), updates); err != nil || len(failed) > 0 {
		slog.Warn("NRI synchronization updates failed", "failed", len(failed), "error", err)
	}
}
