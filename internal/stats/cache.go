package stats

import (
	"strings"
	"sync"
	"time"
)

// Cache holds the latest sample per key. The zero value is ready to use.
// Cached samples are never modified; readers may keep them.
type Cache struct {
	mu sync.Mutex
	m  map[string]*Sample
}

// Put caches s as the latest sample for key, deriving its nano cores from
// the sample it replaces unless s already has them. A sample not newer
// than the cached one (a slower concurrent collection) is dropped. Put
// returns the sample that is cached afterwards.
func (c *Cache) Put(key string, s *Sample) *Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.m[key]
	if prev != nil && !s.Time.After(prev.Time) {
		return prev
	}
	if !s.HasNanoCores && prev != nil && prev.Cgroup != nil && s.Cgroup != nil {
		s.NanoCores, s.HasNanoCores = NanoCores(prev.Cgroup.CPU, s.Cgroup.CPU, prev.Time, s.Time)
	}
	if c.m == nil {
		c.m = map[string]*Sample{}
	}
	c.m[key] = s
	return s
}

// Get returns the cached sample for key, or nil.
func (c *Cache) Get(key string) *Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// Retain drops every key for which keep is false.
func (c *Cache) Retain(keep func(key string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.m {
		if !keep(k) {
			delete(c.m, k)
		}
	}
}

// SumSamples builds a pod's sample from its containers' samples. Its nano
// cores are the sum of theirs when each has them: a sum of cumulative
// counters drops whenever a container goes away, so deriving nano cores
// from two pod sums would fail just then.
func SumSamples(t time.Time, samples []*Sample) *Sample {
	out := &Sample{Time: t, HasNanoCores: true}
	cgs := make([]*Cgroup, 0, len(samples))
	for _, s := range samples {
		if s == nil || s.Cgroup == nil {
			continue
		}
		cgs = append(cgs, s.Cgroup)
		out.NanoCores += s.NanoCores
		out.HasNanoCores = out.HasNanoCores && s.HasNanoCores
	}
	out.Cgroup = Sum(cgs)
	if out.Cgroup == nil {
		out.NanoCores, out.HasNanoCores = 0, false
	}
	return out
}

// Filter selects items of the List calls; empty fields match everything.
// IDs match by prefix, as in ListContainers.
type Filter struct {
	ID, PodSandboxID string
	Labels           map[string]string
}

// Match reports whether an item with these IDs and labels is selected.
func (f Filter) Match(id, podSandboxID string, labels map[string]string) bool {
	if !strings.HasPrefix(id, f.ID) || !strings.HasPrefix(podSandboxID, f.PodSandboxID) {
		return false
	}
	for k, v := range f.Labels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
