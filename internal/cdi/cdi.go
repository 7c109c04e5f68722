// Package cdi resolves a container's Container Device Interface devices
// (ContainerConfig.cdi_devices, and the cdi.k8s.io/ annotations device
// plugins set) against the CDI specs in the configured directories, and
// applies their edits to the container's OCI spec, with
// tags.cncf.io/container-device-interface.
package cdi

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	"tags.cncf.io/container-device-interface/pkg/parser"
)

// Registry is the CDI specs of a set of directories.
type Registry struct {
	mu    sync.Mutex // one refresh at a time
	cache *cdi.Cache
}

// New reads the specs of dirs; later directories win, as in the CDI spec.
// It does not watch them: Devices rereads them, so that a spec a DRA driver
// wrote just before CreateContainer is seen, and no watcher outlives it.
func New(dirs []string) *Registry {
	c, _ := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false)) // never fails
	return &Registry{cache: c}
}

// Request is what a container asks for: its cdi_devices, in order, and
// its annotations.
type Request struct {
	Devices     []string
	Annotations map[string]string
}

// FieldError names the request field that is wrong.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Devices returns the fully qualified device names the request asks for,
// each once, after checking that every one is defined by a spec.
func (r *Registry) Devices(req Request) ([]string, error) {
	var names []string
	for i, n := range req.Devices {
		if _, _, _, err := parser.ParseQualifiedName(n); err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("cdi_devices[%d].name", i), Msg: err.Error()}
		}
		names = append(names, n)
	}
	_, fromAnn, err := cdi.ParseAnnotations(req.Annotations)
	if err != nil {
		return nil, &FieldError{Field: "annotations", Msg: err.Error()}
	}
	for _, n := range fromAnn {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.cache.Refresh(); err != nil {
		// A broken spec file fails only the devices it would define.
		slog.Warn("some CDI specs are invalid", "dirs", r.cache.GetSpecDirectories(), "error", err)
	}
	var unknown []string
	for _, n := range names {
		if r.cache.GetDevice(n) == nil {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		field := "cdi_devices"
		if !slices.Contains(req.Devices, unknown[0]) {
			field = "annotations"
		}
		return nil, &FieldError{Field: field, Msg: fmt.Sprintf("unknown CDI device %s (no spec in %s defines it)",
			strings.Join(unknown, ", "), strings.Join(r.cache.GetSpecDirectories(), ", "))}
	}
	return names, nil
}

// Inject applies the devices' edits (device nodes with their cgroup rules,
// environment, mounts, hooks) to spec.
func (r *Registry) Inject(spec *specs.Spec, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if _, err := r.cache.InjectDevices(spec, names...); err != nil {
		return fmt.Errorf("inject CDI devices %s: %w", strings.Join(names, ", "), err)
	}
	return nil
}
