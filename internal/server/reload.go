package server

import (
	"fmt"
	"log/slog"

	"github.com/BurntSushi/toml"
	"github.com/cradle-runtime/cradle/internal/config"
)

// reloadableKeys are the single keys a reload applies. Handlers added or
// removed (runtime.handlers.NAME) are applied too; every other change is
// logged as needing a restart and keeps its running value.
var reloadableKeys = map[string]func(dst, src *config.Config){
	"log_level":                       func(d, s *config.Config) { d.LogLevel = s.LogLevel },
	"image.pause_image":               func(d, s *config.Config) { d.Image.PauseImage = s.Image.PauseImage },
	"image.pinned_images":             func(d, s *config.Config) { d.Image.PinnedImages = s.Image.PinnedImages },
	"image.registries_conf":           func(d, s *config.Config) { d.Image.RegistriesConf = s.Image.RegistriesConf },
	"image.registries_d":              func(d, s *config.Config) { d.Image.RegistriesD = s.Image.RegistriesD },
	"image.signature_policy":          func(d, s *config.Config) { d.Image.SignaturePolicy = s.Image.SignaturePolicy },
	"runtime.seccomp_profile":         func(d, s *config.Config) { d.Runtime.SeccompProfile = s.Runtime.SeccompProfile },
	"nri.enable":                      func(d, s *config.Config) { d.NRI.Enable = s.NRI.Enable },
	"nri.socket_path":                 func(d, s *config.Config) { d.NRI.SocketPath = s.NRI.SocketPath },
	"nri.plugin_path":                 func(d, s *config.Config) { d.NRI.PluginPath = s.NRI.PluginPath },
	"nri.plugin_config_path":          func(d, s *config.Config) { d.NRI.PluginConfigPath = s.NRI.PluginConfigPath },
	"nri.plugin_registration_timeout": func(d, s *config.Config) { d.NRI.RegistrationTimeout = s.NRI.RegistrationTimeout },
	"nri.plugin_request_timeout":      func(d, s *config.Config) { d.NRI.RequestTimeout = s.NRI.RequestTimeout },
}

// isHandlerTable reports whether k is a whole handler: one added or removed.
func isHandlerTable(k toml.Key) bool {
	return len(k) == 3 && k[0] == "runtime" && k[1] == "handlers"
}

// Reload applies what is safe to change in a running daemon from next, a
// freshly loaded configuration: the log level (which the caller sets), the
// pause image, registries and signature policy (read again), the default
// seccomp profile (read again), handlers added or removed, and NRI: its
// timeouts, and enable and the paths, which start, stop or restart it (in
// flight CRI calls finish first; a failed restart fails the reload and
// keeps the previous NRI settings). Each change is logged; each other key
// that changed is warned about by name. It returns the configuration now in force; on
// error nothing changed.
func (s *Server) Reload(next *config.Config) (*config.Config, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cur := s.lc.Config()
	applied := cur.Clone()
	var changed, kept []config.Change
	for _, c := range config.Diff(cur, next) {
		switch set, ok := reloadableKeys[c.Key.String()]; {
		case ok:
			set(applied, next)
		case isHandlerTable(c.Key) && c.New == "removed":
			delete(applied.Runtime.Handlers, c.Key[2])
		case isHandlerTable(c.Key):
			applied.Runtime.Handlers[c.Key[2]] = next.Runtime.Handlers[c.Key[2]]
		default:
			kept = append(kept, c)
			continue
		}
		changed = append(changed, c)
	}
	// A kept key can contradict an applied one (default_handler naming a
	// removed handler): refuse the reload rather than run an invalid config.
	if err := applied.Validate(); err != nil {
		return nil, fmt.Errorf("the reloadable changes conflict with keys that need a restart: %w", err)
	}
	if err := s.lc.Reload(applied); err != nil {
		return nil, err
	}
	im := applied.Image
	s.images.Reload(im.PauseImage, im.PinnedImages, im.RegistriesConf, im.RegistriesD, im.SignaturePolicy)
	slog.Info("registries and signature policy re-read", "registries_conf", im.RegistriesConf, "signature_policy", im.SignaturePolicy)
	for _, c := range changed {
		slog.Info("config changed", "key", c.Key.String(), "old", c.Old, "new", c.New)
	}
	for _, c := range kept {
		slog.Warn("config change needs a restart; keeping the running value", "key", c.Key.String(), "running", c.Old, "configured", c.New)
	}
	slog.Info("config reloaded", "log_level", applied.LogLevel, "changed", len(changed), "need_restart", len(kept))
	return s.lc.Config(), nil
}
