package server

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/image"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/stats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// minSampleAge keeps the loop from re-reading a sample a request has just
// collected: nano cores over a near-empty window are noise.
const minSampleAge = time.Second

// statsCache holds periodically collected container and pod stats.
type statsCache struct {
	samples stats.Cache

	mu    sync.Mutex
	paths map[string]ctrPaths // by container ID, resolved once
	stop  chan struct{}
	done  chan struct{}
}

// ctrPaths is where a container's stats are read from.
type ctrPaths struct{ cgroup, layerDir string }

func ctrKey(id string) string { return "c/" + id }
func podKey(id string) string { return "p/" + id }

// startStats starts the collection loop; it collects once right away so
// that a restarted daemon serves from a warm cache.
func (s *Server) startStats() {
	st := &s.stats
	st.mu.Lock()
	st.stop, st.done = make(chan struct{}), make(chan struct{})
	stop, done := st.stop, st.done
	st.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Stats.CollectionPeriod.Std())
		defer t.Stop()
		for {
			s.collectAll()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// stopStats stops it and waits for a collection in progress.
func (s *Server) stopStats() {
	st := &s.stats
	st.mu.Lock()
	stop, done := st.stop, st.done
	st.stop = nil
	st.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// collectAll refreshes every live container and ready pod, and forgets the
// rest. A panic is logged, not fatal: the next round tries again.
func (s *Server) collectAll() {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic collecting stats", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	start := time.Now()
	live := map[string]bool{}
	ids := map[string]bool{}
	for _, c := range s.containers.List() {
		r := c.Get()
		ids[r.ID] = true
		if r.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			continue
		}
		live[ctrKey(r.ID)] = true
		if !s.fresh(ctrKey(r.ID)) {
			s.collectContainer(r)
		}
	}
	for _, sb := range s.sandboxes.List() {
		sr := sb.Get()
		if sr.State != sandbox.Ready {
			continue
		}
		live[podKey(sr.ID)] = true
		if !s.fresh(podKey(sr.ID)) {
			s.collectPod(sr)
		}
	}
	s.stats.samples.Retain(func(k string) bool { return live[k] })
	s.stats.mu.Lock()
	for id := range s.stats.paths {
		if !ids[id] {
			delete(s.stats.paths, id)
		}
	}
	s.stats.mu.Unlock()
	slog.Debug("stats collected", "samples", len(live), "duration", time.Since(start).Round(time.Millisecond))
}

func (s *Server) fresh(key string) bool {
	smp := s.stats.samples.Get(key)
	return smp != nil && time.Since(smp.Time) < minSampleAge
}

// containerPaths resolves where a container's cgroup and writable layer
// are; failures are not remembered, so a later call tries again.
func (s *Server) containerPaths(r container.Record) ctrPaths {
	st := &s.stats
	st.mu.Lock()
	p, ok := st.paths[r.ID]
	st.mu.Unlock()
	if ok {
		return p
	}
	var err error
	// Records written before CgroupsPath existed still have the spec.
	if p.cgroup = r.CgroupsPath; p.cgroup == "" {
		if p.cgroup, err = runtime.Bundle(r.Bundle).CgroupsPath(); err != nil {
			slog.Debug("container cgroup unknown", "container", r.ID, "error", err)
		}
	}
	if p.layerDir, err = s.layerDir(r); err != nil {
		slog.Debug("container writable layer unknown", "container", r.ID, "error", err)
	}
	if p.cgroup != "" && p.layerDir != "" {
		st.mu.Lock()
		if st.paths == nil {
			st.paths = map[string]ctrPaths{}
		}
		st.paths[r.ID] = p
		st.mu.Unlock()
	}
	return p
}

// layerDir is the directory holding only what the container wrote:
// overlay's upper dir. Drivers without one (vfs) keep the whole layer at
// the mountpoint.
func (s *Server) layerDir(r container.Record) (string, error) {
	store := s.images.Store()
	c, err := store.Container(r.ID)
	if err != nil {
		return "", fmt.Errorf("storage container %s: %w", r.ID, err)
	}
	driver, err := store.GraphDriver()
	if err != nil {
		return "", fmt.Errorf("storage driver: %w", err)
	}
	md, err := driver.Metadata(c.LayerID)
	if err != nil {
		return "", fmt.Errorf("layer %s of %s: %w", c.LayerID, r.ID, err)
	}
	if dir := md["UpperDir"]; dir != "" {
		return dir, nil
	}
	return r.Rootfs, nil
}

// collectContainer reads a container's cgroup, writable layer and the
// limits of its init process, and caches the sample. An exited container
// has no cgroup or process left to read.
func (s *Server) collectContainer(r container.Record) *stats.Sample {
	p := s.containerPaths(r)
	smp := &stats.Sample{Time: time.Now()}
	live := r.State != runtimeapi.ContainerState_CONTAINER_EXITED
	if p.cgroup != "" && live {
		cg, err := stats.ReadCgroup(p.cgroup)
		if err != nil {
			slog.Debug("read container cgroup", "container", r.ID, "error", err)
		}
		smp.Cgroup = cg
	}
	if p.layerDir != "" {
		bytes, inodes, err := image.FsUsage(p.layerDir)
		if err != nil {
			slog.Debug("writable layer usage", "container", r.ID, "error", err)
		} else {
			smp.Layer = &stats.Layer{Bytes: bytes, Inodes: inodes, Mountpoint: s.images.GraphRoot()}
			if smp.Layer.FS, err = stats.ReadFsInfo(p.layerDir); err != nil {
				slog.Debug("writable layer filesystem", "container", r.ID, "error", err)
			}
		}
	}
	// The limits of the init process (runc's init until started, which has
	// set them already); once exited, the pid may be another process's.
	if r.Pid > 0 && live {
		ul, err := stats.ReadUlimits(r.Pid)
		if err != nil {
			slog.Debug("read container ulimits", "container", r.ID, "error", err)
		}
		smp.Ulimits = ul
	}
	return s.stats.samples.Put(ctrKey(r.ID), smp)
}

// collectPod reads the pod's own cgroup, or sums its containers' samples
// when it has none, and reads its network namespace.
func (s *Server) collectPod(sr sandbox.Record) *stats.Sample {
	now := time.Now()
	var smp *stats.Sample
	if cg := s.podCgroup(sr); cg != "" {
		c, err := stats.ReadCgroup(cg)
		if err == nil {
			smp = &stats.Sample{Time: now, Cgroup: c}
		} else {
			slog.Debug("read pod cgroup; summing its containers", "sandbox", sr.ID, "error", err)
		}
	}
	if smp == nil {
		var parts []*stats.Sample
		for _, c := range s.containersOf(sr.ID, true) {
			if r := c.Get(); r.State != runtimeapi.ContainerState_CONTAINER_EXITED {
				parts = append(parts, s.containerSample(r))
			}
		}
		smp = stats.SumSamples(now, parts)
	}
	if sr.NetNS != "" && !sandbox.HostNetwork(sr.Config) {
		ifaces, err := stats.ReadNetNS(sr.NetNS)
		if err != nil {
			slog.Debug("read pod network stats", "sandbox", sr.ID, "error", err)
		}
		smp.Network = ifaces
	}
	return s.stats.samples.Put(podKey(sr.ID), smp)
}

// podCgroup is the pod's cgroup parent if it is the pod's alone. An empty
// parent means the shared default, and a parent other pods use too would
// count their containers as well.
func (s *Server) podCgroup(sr sandbox.Record) string {
	parent := sr.Config.GetLinux().GetCgroupParent()
	if parent == "" {
		return ""
	}
	for _, sb := range s.sandboxes.List() {
		if o := sb.Get(); o.ID != sr.ID && o.Config.GetLinux().GetCgroupParent() == parent {
			return ""
		}
	}
	return parent
}

// containerSample serves from the cache; the first request for a
// container collects synchronously so that it never gets empty stats, and
// so does one for a container that started after its sample was taken:
// that sample saw no processes of its own.
func (s *Server) containerSample(r container.Record) *stats.Sample {
	if smp := s.stats.samples.Get(ctrKey(r.ID)); smp != nil && !predates(smp, r) {
		return smp
	}
	return s.collectContainer(r)
}

// predates reports whether a running container started after smp was
// taken, or its cgroup could not be read then and a retry is due.
func predates(smp *stats.Sample, r container.Record) bool {
	if r.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return false
	}
	return smp.Time.UnixNano() < r.StartedAt || (smp.Cgroup == nil && time.Since(smp.Time) >= minSampleAge)
}

// podSample serves from the cache like containerSample; a pod's sample is
// taken again when one of its containers started after it.
func (s *Server) podSample(sr sandbox.Record) *stats.Sample {
	if smp := s.stats.samples.Get(podKey(sr.ID)); smp != nil {
		stale := false
		for _, c := range s.containersOf(sr.ID, true) {
			if r := c.Get(); r.State == runtimeapi.ContainerState_CONTAINER_RUNNING && smp.Time.UnixNano() < r.StartedAt {
				stale = true
				break
			}
		}
		if !stale {
			return smp
		}
	}
	return s.collectPod(sr)
}
