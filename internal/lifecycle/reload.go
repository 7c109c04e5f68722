package lifecycle

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/crierr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Config is the configuration in force: the start-up one, with what
// reloads changed.
func (m *Manager) Config() *config.Config { return m.config() }

// newPodHandler resolves the handler a new pod asks for ("" for the
// default). A retired handler refuses new pods.
func (m *Manager) newPodHandler(handler string) (string, error) {
	cfg := m.config()
	if handler == "" {
		handler = cfg.Runtime.DefaultHandler
	}
	if _, ok := cfg.Runtime.Handlers[handler]; ok {
		return handler, nil
	}
	m.rtMu.RLock()
	_, retired := m.retired[handler]
	m.rtMu.RUnlock()
	if retired {
		return "", status.Errorf(codes.FailedPrecondition,
			"runtime_handler: handler %q was removed from the configuration; its running pods keep it, new pods cannot use it", handler)
	}
	return "", crierr.Invalid("runtime_handler", "runtime_handler %q is not configured", handler)
}

// Reload puts next in force for what the manager reads per request: the
// container defaults (the seccomp profile file is read again), the pause
// image, the NRI settings (NRI starts, stops or restarts with new paths)
// and the handler set. A handler new in next gets
// a runtime; one missing from next is retired. A retired handler that comes
// back gets its runtime back with its old definition, which next is made to
// hold: a changed definition needs a restart. The caller keeps every key
// that is not reloadable at its running value. Nothing changes on error.
func (m *Manager) Reload(next *config.Config) error {
	d, err := defaults(next)
	if err != nil {
		return err
	}
	old := m.config()
	// First: it is the one step that can fail once started.
	if err := m.nri.Reconfigure(next.NRI); err != nil {
		return fmt.Errorf("reconfigure NRI: %w", err)
	}
	logNRIChange(old.NRI, next.NRI)
	m.rtMu.Lock()
	for _, name := range next.HandlerNames() {
		if _, ok := m.runtimes[name]; !ok {
			m.runtimes[name] = m.newRuntime(next, name)
			slog.Info("runtime handler added", "handler", name)
			continue
		}
		if h, ok := m.retired[name]; ok {
			if eff, _ := next.Handler(name); !reflect.DeepEqual(eff, h) {
				slog.Warn("config change needs a restart; the handler is back with its old definition", "key", "runtime.handlers."+name)
				next.Runtime.Handlers[name] = h
			}
			delete(m.retired, name)
			slog.Info("runtime handler restored", "handler", name)
		}
	}
	for name := range m.runtimes {
		if _, ok := next.Runtime.Handlers[name]; ok {
			continue
		}
		if _, ok := m.retired[name]; !ok {
			h, _ := old.Handler(name)
			m.retired[name] = h
			slog.Info("runtime handler retired: running pods keep it, new pods are refused", "handler", name)
		}
	}
	m.rtMu.Unlock()
	if d.SeccompProfile != m.defaults.Load().SeccompProfile {
		slog.Info("config changed", "key", "runtime.seccomp_profile", "content", "the profile file was read again and differs")
	}
	m.defaults.Store(&d)
	m.cfg.Store(next)
	return nil
}

// HandlerInfo is a handler as the daemon runs it.
type HandlerInfo struct {
	Name    string
	Handler config.Handler // effective: an inherited path is filled in
	Default bool
	Retired bool // removed by a reload; only its running pods use it
}

// Handlers lists the configured handlers, then the retired ones, by name.
func (m *Manager) Handlers() []HandlerInfo {
	cfg := m.config()
	var out []HandlerInfo
	for _, name := range cfg.HandlerNames() {
		h, _ := cfg.Handler(name)
		out = append(out, HandlerInfo{Name: name, Handler: h, Default: name == cfg.Runtime.DefaultHandler})
	}
	m.rtMu.RLock()
	defer m.rtMu.RUnlock()
	for _, name := range slices.Sorted(maps.Keys(m.retired)) {
		out = append(out, HandlerInfo{Name: name, Handler: m.retired[name], Retired: true})
	}
	return out
}

// logNRIChange says what a reload did to NRI.
func logNRIChange(old, next config.NRIConfig) {
	switch {
	case old.Enable && !next.Enable:
		slog.Info("NRI disabled: plugins stopped, socket removed", "socket", old.SocketPath)
	case !old.Enable && next.Enable:
		slog.Info("NRI enabled", "socket", next.SocketPath, "plugin_path", next.PluginPath)
	case next.Enable && (old.SocketPath != next.SocketPath || old.PluginPath != next.PluginPath || old.PluginConfigPath != next.PluginConfigPath):
		slog.Info("NRI restarted with new settings", "socket", next.SocketPath, "plugin_path", next.PluginPath, "plugin_config_path", next.PluginConfigPath)
	}
}
