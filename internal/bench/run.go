package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Config is a run's parameters.
type Config struct {
	Targets    []Target
	Variants   []Variant
	Iterations int // timed iterations per variant and runtime
	Warmup     int // untimed iterations before them
	Pods       int // pods running during the memory measurement
	Image      string
	PullImages []string // pulled (and timed) before anything else
	Command    []string
	Exec       []string
	CgroupRoot string
	WorkDir    string        // pod log directories (empty: a new temporary one); removed at the end
	RPCTimeout time.Duration // per CRI call
	Settle     time.Duration // wait before each memory snapshot
	Wait       time.Duration // how long a runtime may take to answer Version
	Loads      []Load        // concurrent workloads, in the first variant's pod shape
	Floor      *Floor        // the no-daemon floor; nil skips it
	PullImage  string        // the pull workload's image; empty skips it
	PullReps   int           // its cold pulls per runtime
	Kubelet    *Kubelet      // the kubelet workload; nil skips it
	Log        *slog.Logger
}

// Limits keep a run bounded.
const (
	MaxIterations = 1000
	MaxPods       = 200
)

// Validate checks the config before anything is created.
func (c *Config) Validate() error {
	switch {
	case len(c.Targets) == 0:
		return errors.New("no runtime to benchmark")
	case c.Iterations < 1 || c.Iterations > MaxIterations:
		return fmt.Errorf("iterations %d: want 1..%d", c.Iterations, MaxIterations)
	case c.Warmup < 0 || c.Warmup > MaxIterations:
		return fmt.Errorf("warmup %d: want 0..%d", c.Warmup, MaxIterations)
	case c.Pods < 0 || c.Pods > MaxPods:
		return fmt.Errorf("pods %d: want 0..%d", c.Pods, MaxPods)
	case len(c.Variants) == 0:
		return errors.New("no variant")
	case len(c.Command) == 0 || len(c.Exec) == 0:
		return errors.New("command and exec must not be empty")
	case !filepath.IsAbs(c.CgroupRoot) || c.CgroupRoot == "/":
		return fmt.Errorf("cgroup root %q: want an absolute path below /", c.CgroupRoot)
	case c.WorkDir != "" && !filepath.IsAbs(c.WorkDir):
		return fmt.Errorf("work dir %q: want an absolute path", c.WorkDir)
	case c.RPCTimeout <= 0:
		return errors.New("rpc timeout must be positive")
	case c.PullImage != "" && (c.PullReps < 1 || c.PullReps > MaxPullReps):
		return fmt.Errorf("pull reps %d: want 1..%d", c.PullReps, MaxPullReps)
	case c.Kubelet != nil && (c.Kubelet.Bin == "" || c.Kubelet.Pods < 1 || c.Kubelet.Pods > MaxKubeletPods ||
		!filepath.IsAbs(c.Kubelet.Dir) || !filepath.IsAbs(c.Kubelet.CgroupRoot) || c.Kubelet.CgroupRoot == "/" || c.Kubelet.Timeout <= 0):
		return fmt.Errorf("kubelet: want a binary, 1..%d pods, absolute dir and cgroup root below /, a positive timeout", MaxKubeletPods)
	case c.Floor != nil && (c.Floor.Runc == "" || c.Floor.CNIConf == "" || len(c.Floor.CNIBin) == 0 || c.Floor.Layout == "" || c.Floor.Ref == ""):
		return errors.New("floor: runc, CNI config, CNI plugin dirs and an OCI layout image are all needed")
	}
	seen := map[string]bool{}
	for _, t := range c.Targets {
		if seen[t.Name] {
			return fmt.Errorf("runtime name %q given twice", t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

// bench is one run in progress.
type bench struct {
	cfg     Config
	w       Workload
	clients []*client
	report  *Report
	log     *slog.Logger
	seq     int
}

// Run benchmarks every target: pulls, then per variant the timed loop
// (runtimes take turns, the first one alternating, so drift over time hits
// each equally) and the memory with cfg.Pods pods, then removes everything
// the run created. The report is returned also on error, with what was
// measured so far; an error means the numbers are incomplete or something
// was left behind.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.WorkDir == "" {
		d, err := os.MkdirTemp("", "cradle-bench-")
		if err != nil {
			return nil, fmt.Errorf("work dir: %w", err)
		}
		cfg.WorkDir = d
	}
	runID := newUID()[:12]
	b := &bench{
		cfg: cfg, log: log.With("run", runID),
		w: Workload{
			Image: cfg.Image, Command: cfg.Command, Exec: cfg.Exec, RunID: runID,
			CgroupRoot: cfg.CgroupRoot, LogRoot: filepath.Join(cfg.WorkDir, "logs"),
		},
		report: &Report{
			Started: time.Now(), Host: hostInfo(), Iterations: cfg.Iterations, Warmup: cfg.Warmup,
			Pods: cfg.Pods, Image: cfg.Image,
		},
	}
	err := b.run(ctx)
	// The sweep runs also after a cancel (Ctrl-C), with a context of its own.
	sweepCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if serr := b.sweep(sweepCtx); serr != nil {
		err = errors.Join(err, serr)
	}
	for _, c := range b.clients {
		c.close()
	}
	if err == nil && len(b.report.Errors) > 0 {
		err = fmt.Errorf("%d operations failed", len(b.report.Errors))
	}
	return b.report, err
}

func (b *bench) run(ctx context.Context) error {
	for _, t := range b.cfg.Targets {
		c, err := dial(t, b.cfg.RPCTimeout, b.log)
		if err != nil {
			return err
		}
		b.clients = append(b.clients, c)
		res := RuntimeResult{Name: t.Name, Endpoint: t.Endpoint, DaemonPID: t.PID}
		if res.Version, err = c.waitVersion(ctx, b.cfg.Wait); err != nil {
			return err
		}
		if res.DaemonPID == 0 {
			if res.DaemonPID, err = hostProc.SocketOwner(t.SocketPath()); err != nil {
				return fmt.Errorf("%s: find the daemon: %w", t.Name, err)
			}
		}
		c.t.PID = res.DaemonPID
		b.log.Info("runtime", "runtime", t.Name, "version", res.Version, "pid", res.DaemonPID)
		b.report.Runtimes = append(b.report.Runtimes, res)
	}
	for i, c := range b.clients {
		for _, img := range b.cfg.PullImages {
			d, err := c.pull(ctx, img)
			if err != nil {
				return err
			}
			b.log.Info("pulled", "runtime", c.t.Name, "image", img, "ms", ms(d))
			b.report.Runtimes[i].Pulls = append(b.report.Runtimes[i].Pulls, Pull{Image: img, Duration: d})
		}
	}
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return err
	}
	for i, c := range b.clients {
		m, err := hostProc.mem(c.t.PID)
		if err != nil {
			return fmt.Errorf("%s: idle memory: %w", c.t.Name, err)
		}
		b.report.Runtimes[i].Idle = m
	}
	for _, v := range b.cfg.Variants {
		vr := VariantResult{
			Name: v.Name, Title: v.Title,
			Latency: make(map[string]map[string]Summary), Memory: make(map[string]*MemResult),
		}
		if err := b.latency(ctx, v, &vr); err != nil {
			b.report.Variants = append(b.report.Variants, vr)
			return err
		}
		if b.cfg.Pods > 0 {
			for i, c := range b.clients {
				m, err := b.memory(ctx, c, v)
				if m != nil {
					vr.Memory[b.report.Runtimes[i].Name] = m
				}
				if err != nil {
					b.report.Variants = append(b.report.Variants, vr)
					return err
				}
			}
		}
		b.report.Variants = append(b.report.Variants, vr)
	}
	if b.cfg.Floor != nil {
		f, err := b.floor(ctx, *b.cfg.Floor)
		if err != nil {
			return err
		}
		b.report.Floor = f
	}
	for i, l := range b.cfg.Loads {
		lr := LoadResults{Load: l, Runtimes: map[string]*LoadResult{}}
		// Who goes first alternates from one load to the next.
		order := slices.Clone(b.clients)
		if k := i % len(order); k > 0 {
			order = append(order[k:], order[:k]...)
		}
		for _, c := range order {
			r, err := b.load(ctx, c, b.cfg.Variants[0], l)
			if r != nil {
				lr.Runtimes[c.t.Name] = r
			}
			if err != nil {
				b.report.Loads = append(b.report.Loads, lr)
				return err
			}
		}
		b.report.Loads = append(b.report.Loads, lr)
	}
	if b.cfg.Kubelet != nil {
		k, err := b.kubeletAll(ctx, *b.cfg.Kubelet)
		b.report.Kubelet = k
		if err != nil {
			return err
		}
	}
	if b.cfg.PullImage != "" {
		p, err := b.pullWorkload(ctx, b.cfg.PullImage, b.cfg.PullReps)
		b.report.Pull = p
		if err != nil {
			return err
		}
	}
	return nil
}

// latency runs the timed loop of one variant.
func (b *bench) latency(ctx context.Context, v Variant, vr *VariantResult) error {
	samples := make(map[string]map[string][]time.Duration) // op -> runtime -> samples
	for _, op := range Ops {
		samples[op] = make(map[string][]time.Duration)
	}
	defer func() {
		for op, byRT := range samples {
			vr.Latency[op] = make(map[string]Summary)
			for rt, s := range byRT {
				vr.Latency[op][rt] = Summarize(s)
			}
		}
	}()
	total := b.cfg.Warmup + b.cfg.Iterations
	b.log.Info("latency loop", "variant", v.Name, "warmup", b.cfg.Warmup, "iterations", b.cfg.Iterations)
	for i := range total {
		// Rotate who goes first: no runtime always runs right after the
		// other's teardown.
		order := slices.Clone(b.clients)
		if len(order) > 1 {
			k := i % len(order)
			order = append(order[k:], order[:k]...)
		}
		for _, c := range order {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("latency loop: %w", err)
			}
			tm := timings{}
			if err := b.iteration(ctx, c, v, tm); err != nil {
				b.fail(c, err)
				continue
			}
			if i < b.cfg.Warmup {
				continue
			}
			for op, d := range tm {
				samples[op][c.t.Name] = append(samples[op][c.t.Name], d)
			}
		}
		if i >= b.cfg.Warmup && (i-b.cfg.Warmup+1)%10 == 0 {
			b.log.Info("progress", "variant", v.Name, "done", i-b.cfg.Warmup+1, "of", b.cfg.Iterations)
		}
	}
	return nil
}

// iteration is one pod's whole life; a failure removes what it created.
func (b *bench) iteration(ctx context.Context, c *client, v Variant, tm timings) error {
	b.seq++
	uid := newUID()
	p, err := c.startPod(ctx, b.w, v, b.seq, uid, tm)
	if err == nil {
		err = c.execSync(ctx, b.w, p, tm)
	}
	if err == nil {
		err = c.stopPod(ctx, p, tm)
	}
	if err != nil && p != nil {
		if rerr := c.removePod(context.WithoutCancel(ctx), p.sandboxID); rerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", rerr))
		}
	}
	_ = os.RemoveAll(filepath.Join(b.w.LogRoot, c.t.Name, uid))
	return err
}

func (b *bench) fail(c *client, err error) {
	b.log.Error("operation failed", "runtime", c.t.Name, "err", err)
	b.report.Errors = append(b.report.Errors, err.Error())
}

// memory starts cfg.Pods pods on one runtime, measures, and removes them.
func (b *bench) memory(ctx context.Context, c *client, v Variant) (*MemResult, error) {
	b.log.Info("memory", "runtime", c.t.Name, "variant", v.Name, "pods", b.cfg.Pods)
	// The daemon's baseline is taken now, not at the start of the run: its
	// heap differs after the timed loop.
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return nil, err
	}
	idle, err := hostProc.mem(c.t.PID)
	if err != nil {
		return nil, fmt.Errorf("%s: daemon memory: %w", c.t.Name, err)
	}
	var pods []*pod
	defer func() {
		for _, p := range pods {
			if err := c.stopPod(context.WithoutCancel(ctx), p, timings{}); err != nil {
				b.fail(c, err)
				_ = c.removePod(context.WithoutCancel(ctx), p.sandboxID)
			}
		}
	}()
	for range b.cfg.Pods {
		b.seq++
		p, err := c.startPod(ctx, b.w, v, b.seq, newUID(), timings{})
		if p != nil && p.sandboxID != "" {
			pods = append(pods, p)
		}
		if err != nil {
			b.fail(c, err)
			return nil, fmt.Errorf("memory: start pod: %w", err)
		}
	}
	if err := sleep(ctx, b.cfg.Settle); err != nil {
		return nil, err
	}
	m, err := snapshot(hostProc, c.t.PID, b.w.CgroupTree(c.t.Name, v), b.w.IsWorkload)
	if err != nil {
		return nil, fmt.Errorf("%s: memory: %w", c.t.Name, err)
	}
	m.Pods = len(pods)
	m.DaemonIdle = idle
	if m.Workloads != m.Pods {
		b.log.Warn("workload processes do not match the pods", "runtime", c.t.Name,
			"pods", m.Pods, "found", m.Workloads)
	}
	for _, p := range m.OverheadProcs {
		b.log.Debug("overhead process", "runtime", c.t.Name, "pid", p.PID, "comm", p.Comm,
			"pss_kb", p.Mem.PSS/1024, "cmdline", strings.Join(p.Cmdline, " "))
	}
	b.log.Info("memory measured", "runtime", c.t.Name, "variant", v.Name,
		"daemon_pss_mib", mib(m.Daemon.PSS), "per_pod", m.ProcsPerPod(),
		"overhead_pss_per_pod_mib", mib(m.OverheadPerPod().PSS))
	return &m, nil
}

// sweep removes every pod the run labeled, then checks that none is left,
// that no process remains in the run's cgroups, and removes those cgroups
// and the work dir.
func (b *bench) sweep(ctx context.Context) error {
	var errs []error
	for _, c := range b.clients {
		sbs, _, err := c.runPods(ctx, b.w.RunID)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
			continue
		}
		for _, id := range sbs {
			b.log.Warn("removing a pod left by the run", "runtime", c.t.Name, "sandbox", id)
			if err := c.removePod(ctx, id); err != nil {
				errs = append(errs, fmt.Errorf("sweep: %w", err))
			}
		}
		sbs, ctrs, err := c.runPods(ctx, b.w.RunID)
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep: %w", err))
			continue
		}
		if len(sbs) > 0 || len(ctrs) > 0 {
			b.report.Leaks = append(b.report.Leaks,
				fmt.Sprintf("%s: %d sandboxes and %d containers still listed", c.t.Name, len(sbs), len(ctrs)))
		}
	}
	// Processes left in the run's cgroups, and the monitors of those.
	if procs, err := hostProc.all(); err == nil {
		for _, c := range b.clients {
			tree := filepath.Join(b.cfg.CgroupRoot, c.t.Name)
			left, n := Classify(procs, tree, c.t.PID, b.w.IsWorkload)
			for _, p := range left {
				b.report.Leaks = append(b.report.Leaks, fmt.Sprintf("%s: process %d (%s)", c.t.Name, p.PID, p.Comm))
			}
			if n > 0 {
				b.report.Leaks = append(b.report.Leaks, fmt.Sprintf("%s: %d workload processes", c.t.Name, n))
			}
		}
	} else {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	if err := removeCgroupTree(b.cfg.CgroupRoot); err != nil {
		b.report.Leaks = append(b.report.Leaks, err.Error())
	}
	if err := os.RemoveAll(b.cfg.WorkDir); err != nil {
		errs = append(errs, fmt.Errorf("sweep: %w", err))
	}
	if len(b.report.Leaks) > 0 {
		errs = append(errs, fmt.Errorf("%d things left behind", len(b.report.Leaks)))
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes root and the directories below it from every
// mounted hierarchy, deepest first (the pod-level cgroups the runtimes
// create as parents and leave, as they leave the kubelet's).
func removeCgroupTree(root string) error {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	hier = append(hier, "/sys/fs/cgroup")
	var errs []error
	for _, h := range hier {
		top := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("cgroup %s: %w", d, err))
			}
		}
	}
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func newUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func hostInfo() string {
	var u unix.Utsname
	kernel := "unknown kernel"
	if err := unix.Uname(&u); err == nil {
		kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	return fmt.Sprintf("%d CPUs, %s", runtime.NumCPU(), kernel)
}
