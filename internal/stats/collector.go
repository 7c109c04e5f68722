package stats

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// minSampleAge keeps the loop from re-reading a sample a request has just
// collected: nano cores over a near-empty window are noise.
const minSampleAge = time.Second

// Container is what the collector needs to know of one container.
type Container struct {
	ID        string
	Running   bool  // started and not exited
	Exited    bool  // nothing left to read but its writable layer
	StartedAt int64 // unix nanoseconds; 0 until started
	Pid       int   // its init, for the ulimits
	Cgroup    string
}

// Pod is one ready pod: its own cgroup ("" when it has none of its own),
// its network namespace ("" on the host's) and its containers, infra too.
type Pod struct {
	ID         string
	Cgroup     string
	NetNS      string
	Containers []Container
}

// Source tells the collector what exists. Its methods are called from the
// collection loop and from requests, without the collector's locks held.
type Source interface {
	// Containers lists every known container.
	Containers() []Container
	// Pods lists the ready pods.
	Pods() []Pod
	// Layer is the directory holding only what the container wrote, and
	// the usage of that directory.
	LayerDir(id string) (string, error)
	LayerUsage(dir string) (bytes, inodes uint64, err error)
	// LayerMountpoint is where the writable layers' filesystem is mounted.
	LayerMountpoint() string
}

// Collector samples containers and pods periodically into a cache that
// the stats RPCs serve from; a request for something never sampled, or
// sampled before it started, collects synchronously.
type Collector struct {
	src     Source
	period  time.Duration
	samples Cache

	mu     sync.Mutex
	layers map[string]string // container ID -> writable layer dir
	stop   chan struct{}
	done   chan struct{}
}

// NewCollector builds a collector; Start runs its loop.
func NewCollector(src Source, period time.Duration) *Collector {
	return &Collector{src: src, period: period, layers: map[string]string{}}
}

func ctrKey(id string) string { return "c/" + id }
func podKey(id string) string { return "p/" + id }

// Start starts the loop; it collects once right away so that a restarted
// daemon serves from a warm cache.
func (c *Collector) Start() {
	c.mu.Lock()
	c.stop, c.done = make(chan struct{}), make(chan struct{})
	stop, done := c.stop, c.done
	c.mu.Unlock()
	go func() {
		defer close(done)
		t := time.NewTicker(c.period)
		defer t.Stop()
		for {
			c.collectAll()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
}

// Stop stops the loop and waits for a collection in progress.
func (c *Collector) Stop() {
	c.mu.Lock()
	stop, done := c.stop, c.done
	c.stop = nil
	c.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// collectAll refreshes every live container and ready pod, and forgets the
// rest. A panic is logged, not fatal: the next round tries again.
func (c *Collector) collectAll() {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic collecting stats", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	start := time.Now()
	live := map[string]bool{}
	ids := map[string]bool{}
	for _, ctr := range c.src.Containers() {
		ids[ctr.ID] = true
		if ctr.Exited {
			continue
		}
		live[ctrKey(ctr.ID)] = true
		if !c.fresh(ctrKey(ctr.ID)) {
			c.collectContainer(ctr)
		}
	}
	for _, p := range c.src.Pods() {
		live[podKey(p.ID)] = true
		if !c.fresh(podKey(p.ID)) {
			c.collectPod(p)
		}
	}
	c.samples.Retain(func(k string) bool { return live[k] })
	c.mu.Lock()
	for id := range c.layers {
		if !ids[id] {
			delete(c.layers, id)
		}
	}
	c.mu.Unlock()
	slog.Debug("stats collected", "samples", len(live), "duration", time.Since(start).Round(time.Millisecond))
}

func (c *Collector) fresh(key string) bool {
	smp := c.samples.Get(key)
	return smp != nil && time.Since(smp.Time) < minSampleAge
}

// layerDir resolves a container's writable layer once; a failure is not
// remembered, so a later call tries again.
func (c *Collector) layerDir(id string) string {
	c.mu.Lock()
	dir, ok := c.layers[id]
	c.mu.Unlock()
	if ok {
		return dir
	}
	dir, err := c.src.LayerDir(id)
	if err != nil {
		slog.Debug("container writable layer unknown", "container", id, "error", err)
		return ""
	}
	c.mu.Lock()
	c.layers[id] = dir
	c.mu.Unlock()
	return dir
}

// collectContainer reads a container's cgroup, writable layer and the
// limits of its init process, and caches the sample. An exited container
// has no cgroup or process left to read.
func (c *Collector) collectContainer(ctr Container) *Sample {
	smp := &Sample{Time: time.Now()}
	if ctr.Cgroup != "" && !ctr.Exited {
		cg, err := ReadCgroup(ctr.Cgroup)
		if err != nil {
			slog.Debug("read container cgroup", "container", ctr.ID, "error", err)
		}
		smp.Cgroup = cg
	}
	if dir := c.layerDir(ctr.ID); dir != "" {
		bytes, inodes, err := c.src.LayerUsage(dir)
		if err != nil {
			slog.Debug("writable layer usage", "container", ctr.ID, "error", err)
		} else {
			smp.Layer = &Layer{Bytes: bytes, Inodes: inodes, Mountpoint: c.src.LayerMountpoint()}
			if smp.Layer.FS, err = ReadFsInfo(dir); err != nil {
				slog.Debug("writable layer filesystem", "container", ctr.ID, "error", err)
			}
		}
	}
	// The limits of the init process (runc's init until started, which has
	// set them already); once exited, the pid may be another process's.
	if ctr.Pid > 0 && !ctr.Exited {
		ul, err := ReadUlimits(ctr.Pid)
		if err != nil {
			slog.Debug("read container ulimits", "container", ctr.ID, "error", err)
		}
		smp.Ulimits = ul
	}
	return c.samples.Put(ctrKey(ctr.ID), smp)
}

// collectPod reads the pod's own cgroup, or sums its containers' samples
// when it has none, and reads its network namespace.
func (c *Collector) collectPod(p Pod) *Sample {
	now := time.Now()
	var smp *Sample
	if p.Cgroup != "" {
		cg, err := ReadCgroup(p.Cgroup)
		if err == nil {
			smp = &Sample{Time: now, Cgroup: cg}
		} else {
			slog.Debug("read pod cgroup; summing its containers", "sandbox", p.ID, "error", err)
		}
	}
	if smp == nil {
		var parts []*Sample
		for _, ctr := range p.Containers {
			if !ctr.Exited {
				parts = append(parts, c.Container(ctr))
			}
		}
		smp = SumSamples(now, parts)
	}
	if p.NetNS != "" {
		ifaces, err := ReadNetNS(p.NetNS)
		if err != nil {
			slog.Debug("read pod network stats", "sandbox", p.ID, "error", err)
		}
		smp.Network = ifaces
	}
	return c.samples.Put(podKey(p.ID), smp)
}

// Container serves from the cache; the first request for a container
// collects synchronously so that it never gets empty stats, and so does
// one for a container that started after its sample was taken: that
// sample saw no processes of its own.
func (c *Collector) Container(ctr Container) *Sample {
	if smp := c.samples.Get(ctrKey(ctr.ID)); smp != nil && !predates(smp, ctr) {
		return smp
	}
	return c.collectContainer(ctr)
}

// predates reports whether a running container started after smp was
// taken, or its cgroup could not be read then and a retry is due.
func predates(smp *Sample, ctr Container) bool {
	if !ctr.Running {
		return false
	}
	return smp.Time.UnixNano() < ctr.StartedAt || (smp.Cgroup == nil && time.Since(smp.Time) >= minSampleAge)
}

// Pod serves from the cache like Container; a pod's sample is taken again
// when one of its containers started after it.
func (c *Collector) Pod(p Pod) *Sample {
	if smp := c.samples.Get(podKey(p.ID)); smp != nil {
		stale := false
		for _, ctr := range p.Containers {
			if ctr.Running && smp.Time.UnixNano() < ctr.StartedAt {
				stale = true
				break
			}
		}
		if !stale {
			return smp
		}
	}
	return c.collectPod(p)
}
