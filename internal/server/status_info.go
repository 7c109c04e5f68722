package server

import (
	"encoding/json"
	"fmt"

	"github.com/cradle-runtime/cradle/internal/version"
)

// HandlerStatus is one handler in the verbose Status info ("handlers").
type HandlerStatus struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Path        string `json:"path"`
	RuntimePath string `json:"runtime_path,omitempty"`
	Default     bool   `json:"default,omitempty"`
	// Retired handlers were removed by a reload: their running pods keep
	// them, new pods are refused.
	Retired bool `json:"retired,omitempty"`
}

// Keys of the verbose Status info, each a JSON document. The kubelet
// ignores them; cradle status and crictl info show them.
const (
	InfoConfig   = "config"   // the configuration in force, by TOML key names
	InfoHandlers = "handlers" // []HandlerStatus
	InfoVersion  = "version"  // the daemon's build version, a JSON string
)

func (s *Server) verboseInfo() (map[string]string, error) {
	cfg, err := s.lc.Config().Map()
	if err != nil {
		return nil, err
	}
	var handlers []HandlerStatus
	for _, h := range s.lc.Handlers() {
		handlers = append(handlers, HandlerStatus{Name: h.Name, Type: h.Handler.Type, Path: h.Handler.Path,
			RuntimePath: h.Handler.RuntimePath, Default: h.Default, Retired: h.Retired})
	}
	info := map[string]string{}
	for k, v := range map[string]any{InfoConfig: cfg, InfoHandlers: handlers, InfoVersion: version.Version} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", k, err)
		}
		info[k] = string(b)
	}
	return info, nil
}
