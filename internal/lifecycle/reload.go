package lifecycle

import (
	"log/slog"
	"reflect"
	"slices"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/crierr"
	"github.com/cradle-runtime/cradle/internal/nri"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Config is the configuration in force: the start-up one, with what
// reloads changed.
func (m *Manager) Config() *config.Config { return m.config() }

// RetiredHandlers lists the handlers removed by a reload whose runtimes
// stay for the pods they run, sorted.
func (m *Manager) RetiredHandlers() []string {
	m.rtMu.RLock()
	defer m.rtMu.RUnlock()
	names := make([]string, 0, len(m.retired))
	for n := range m.retired {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

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
// image, the NRI timeouts and the handler set. A handler new in next gets
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
	nri.SetTimeouts(next.NRI)
	m.defaults.Store(&d)
	m.cfg.Store(next)
	return nil
}
