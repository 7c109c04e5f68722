package server

import (
	"fmt"
	"log/slog"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/stats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsSource tells the stats collector what the records hold.
type statsSource struct{ s *Server }

func (src statsSource) Containers() []stats.Container {
	var out []stats.Container
	for _, c := range src.s.lc.Containers().List() {
		out = append(out, statsContainer(c.Get()))
	}
	return out
}

func (src statsSource) Pods() []stats.Pod {
	var out []stats.Pod
	for _, sb := range src.s.lc.Sandboxes().List() {
		if sr := sb.Get(); sr.State == sandbox.Ready {
			out = append(out, src.s.statsPod(sr))
		}
	}
	return out
}

// LayerDir is overlay's upper dir: only what the container wrote. Drivers
// without one (vfs) keep the whole layer at the mountpoint.
func (src statsSource) LayerDir(id string) (string, error) {
	store := src.s.images.Store()
	c, err := store.Container(id)
	if err != nil {
		return "", fmt.Errorf("storage container %s: %w", id, err)
	}
	driver, err := store.GraphDriver()
	if err != nil {
		return "", fmt.Errorf("storage driver: %w", err)
	}
	md, err := driver.Metadata(c.LayerID)
	if err != nil {
		return "", fmt.Errorf("layer %s of %s: %w", c.LayerID, id, err)
	}
	if dir := md["UpperDir"]; dir != "" {
		return dir, nil
	}
	ctr, err := src.s.lc.Containers().Get(id)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", id, err)
	}
	return ctr.Get().Rootfs, nil
}

func (src statsSource) LayerUsage(dir string) (uint64, uint64, error) { return image.FsUsage(dir) }
func (src statsSource) LayerMountpoint() string                       { return src.s.images.GraphRoot() }

func statsContainer(r container.Record) stats.Container {
	cg := r.CgroupsPath
	if cg == "" {
		// Records written before CgroupsPath existed still have the spec.
		var err error
		if cg, err = runtime.Bundle(r.Bundle).CgroupsPath(); err != nil {
			slog.Debug("container cgroup unknown", "container", r.ID, "error", err)
		}
	}
	return stats.Container{
		ID: r.ID, Cgroup: cg, Pid: r.Pid, StartedAt: r.StartedAt,
		Running: r.State == runtimeapi.ContainerState_CONTAINER_RUNNING,
		Exited:  r.State == runtimeapi.ContainerState_CONTAINER_EXITED,
	}
}

func (s *Server) statsPod(sr sandbox.Record) stats.Pod {
	p := stats.Pod{ID: sr.ID, Cgroup: s.podCgroup(sr)}
	if !sandbox.HostNetwork(sr.Config) {
		p.NetNS = sr.NetNS
	}
	for _, c := range s.lc.ContainersOf(sr.ID, true) {
		p.Containers = append(p.Containers, statsContainer(c.Get()))
	}
	return p
}

// podCgroup is the pod's cgroup parent if it is the pod's alone. An empty
// parent means the shared default, and a parent other pods use too would
// count their containers as well.
func (s *Server) podCgroup(sr sandbox.Record) string {
	parent := sr.Config.GetLinux().GetCgroupParent()
	if parent == "" {
		return ""
	}
	for _, sb := range s.lc.Sandboxes().List() {
		if o := sb.Get(); o.ID != sr.ID && o.Config.GetLinux().GetCgroupParent() == parent {
			return ""
		}
	}
	return parent
}
