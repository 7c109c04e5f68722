package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Load is a concurrent workload: Pods pods started Concurrency at a time,
// all kept running until the last has started, then removed Concurrency at
// a time. It gives the throughput, and how the cost of a pod grows with
// the pods already running.
type Load struct {
	Pods        int `json:"pods"`
	Concurrency int `json:"concurrency"`
}

func (l Load) String() string { return fmt.Sprintf("%dx%d", l.Pods, l.Concurrency) }

// GrowthWindow is how many pods at each end of a load the cost growth
// compares: the first ones started against the last.
const GrowthWindow = 10

// ParseLoads parses a comma-separated list of PODSxCONCURRENCY, e.g.
// "40x4,100x8"; "" is none.
func ParseLoads(s string) ([]Load, error) {
	var out []Load
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, c, ok := strings.Cut(part, "x")
		n, err1 := strconv.Atoi(p)
		k, err2 := strconv.Atoi(c)
		switch {
		case !ok || err1 != nil || err2 != nil:
			return nil, fmt.Errorf("load %q: want PODSxCONCURRENCY, e.g. 40x4", part)
		case n < 1 || n > MaxPods:
			return nil, fmt.Errorf("load %q: pods %d, want 1..%d", part, n, MaxPods)
		case k < 1 || k > n:
			return nil, fmt.Errorf("load %q: concurrency %d, want 1..%d", part, k, n)
		}
		out = append(out, Load{Pods: n, Concurrency: k})
	}
	return out, nil
}

// LoadResult is one load on one runtime.
type LoadResult struct {
	Load
	Started    int           `json:"started"` // pods that reached a running container
	Errors     int           `json:"errors"`
	Wall       time.Duration `json:"wall_ns"` // from the first RunPodSandbox to the last StartContainer
	PodsPerSec float64       `json:"pods_per_sec"`
	Ready      Summary       `json:"ready"` // pod start (run+create+start), every pod
	First      Summary       `json:"first"` // the same, of the first GrowthWindow pods by start order
	Last       Summary       `json:"last"`  // and of the last ones
	// The daemon before the load and with every pod running.
	DaemonBefore Mem `json:"daemon_before"`
	DaemonAfter  Mem `json:"daemon_after"`
}

// RSSGrowthPerPod is the daemon's RSS growth per running pod, in bytes.
func (r LoadResult) RSSGrowthPerPod() int64 {
	if r.Started == 0 {
		return 0
	}
	return (r.DaemonAfter.RSS - r.DaemonBefore.RSS) / int64(r.Started)
}

// GrowthRatio is the last pods' pod-start p50 over the first ones'.
func (r LoadResult) GrowthRatio() float64 {
	if r.First.P50 <= 0 {
		return 0
	}
	return float64(r.Last.P50) / float64(r.First.P50)
}

// load runs one load on one runtime. Pods are numbered in the order the
// workers take them, which is the order growth is judged in.
func (b *bench) load(ctx context.Context, c *client, v Variant, l Load) (*LoadResult, error) {
	res := &LoadResult{Load: l}
	b.log.Info("load", "runtime", c.t.Name, "pods", l.Pods, "concurrency", l.Concurrency)
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return nil, err
	}
	var err error
	if res.DaemonBefore, err = hostProc.mem(c.t.PID); err != nil {
		return nil, fmt.Errorf("%s: daemon memory: %w", c.t.Name, err)
	}
	ready := make([]time.Duration, l.Pods) // by start order; 0: failed
	pods := make([]*pod, l.Pods)
	base := b.seq
	b.seq += l.Pods
	var (
		mu   sync.Mutex
		errs []error
	)
	run := func(fn func(i int) error) {
		next := make(chan int)
		var wg sync.WaitGroup
		for range l.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := fn(i); err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			}()
		}
		for i := range l.Pods {
			if ctx.Err() != nil {
				break
			}
			next <- i
		}
		close(next)
		wg.Wait()
	}
	start := time.Now()
	var last time.Time
	run(func(i int) error {
		tm := timings{}
		p, err := c.startPod(ctx, b.w, v, base+i+1, newUID(), tm)
		mu.Lock()
		defer mu.Unlock()
		pods[i] = p
		if err != nil {
			return err
		}
		ready[i] = tm[OpPodStart]
		if now := time.Now(); now.After(last) {
			last = now
		}
		return nil
	})
	res.Wall = last.Sub(start)
	var all []time.Duration
	for _, d := range ready {
		if d > 0 {
			all = append(all, d)
		}
	}
	res.Started = len(all)
	if res.Wall > 0 {
		res.PodsPerSec = float64(res.Started) / res.Wall.Seconds()
	}
	res.Ready = Summarize(all)
	if w := min(GrowthWindow, l.Pods/2); w > 0 {
		res.First, res.Last = Summarize(nonZero(ready[:w])), Summarize(nonZero(ready[l.Pods-w:]))
	}
	if err := sleep(ctx, b.cfg.Settle); err == nil {
		if m, err := hostProc.mem(c.t.PID); err == nil {
			res.DaemonAfter = m
		}
	}
	run(func(i int) error {
		p := pods[i]
		if p == nil || p.sandboxID == "" {
			return nil
		}
		if err := c.stopPod(context.WithoutCancel(ctx), p, timings{}); err != nil {
			return errors.Join(err, c.removePod(context.WithoutCancel(ctx), p.sandboxID))
		}
		return nil
	})
	for _, err := range errs {
		b.fail(c, err)
	}
	res.Errors = len(errs)
	b.log.Info("load done", "runtime", c.t.Name, "load", l.String(), "started", res.Started,
		"pods_per_sec", fmt.Sprintf("%.1f", res.PodsPerSec), "ready_p50_ms", ms(res.Ready.P50),
		"growth", fmt.Sprintf("%.2f", res.GrowthRatio()), "errors", res.Errors)
	return res, ctx.Err()
}

func nonZero(ds []time.Duration) []time.Duration {
	var out []time.Duration
	for _, d := range ds {
		if d > 0 {
			out = append(out, d)
		}
	}
	return out
}
