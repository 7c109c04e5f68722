package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// envInt reads a count from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		return n
	}
	return def
}

// lifecycle is one pod's whole life as the kubelet drives it: run, create
// and start a container that logs a line, ExecSync, stop and remove.
func (d *daemon) lifecycle(c context.Context, n int) error {
	cfg := d.podConfig(d.t, fmt.Sprintf("load-%d", n))
	run, err := d.rt.RunPodSandbox(c, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	pod := run.GetPodSandboxId()
	line := fmt.Sprintf("soak-line-%d", n)
	cc := containerConfig("app", "sh", "-c", "echo "+line+"; exec sleep 1000")
	cr, err := d.rt.CreateContainer(c, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cc, SandboxConfig: cfg})
	if err != nil {
		return fmt.Errorf("CreateContainer: %w", err)
	}
	ctr := cr.GetContainerId()
	if _, err := d.rt.StartContainer(c, &runtimeapi.StartContainerRequest{ContainerId: ctr}); err != nil {
		return fmt.Errorf("StartContainer: %w", err)
	}
	ex, err := d.rt.ExecSync(c, &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"echo", "exec-" + line}, Timeout: 30})
	if err != nil || ex.GetExitCode() != 0 || string(ex.GetStdout()) != "exec-"+line+"\n" {
		return fmt.Errorf("ExecSync: %v, exit %d, %q", err, ex.GetExitCode(), ex.GetStdout())
	}
	logPath := filepath.Join(cfg.LogDirectory, "app.log")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, _ := os.ReadFile(logPath); strings.Contains(string(b), " "+line+"\n") {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("log line %q never appeared in %s", line, logPath)
		}
	}
	if _, err := d.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := d.rt.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return nil
}

// processFigures are the daemon's own: goroutines, open FDs, RSS.
type processFigures struct{ goroutines, fds, rss float64 }

func (p processFigures) String() string {
	return fmt.Sprintf("%.0f goroutines, %.0f FDs, %.1f MiB RSS", p.goroutines, p.fds, p.rss/(1<<20))
}

func figures(t *testing.T, addr string) processFigures {
	mfs := scrape(t, addr)
	return processFigures{
		goroutines: metricValue(mfs, "go_goroutines"),
		fds:        metricValue(mfs, "process_open_fds"),
		rss:        metricValue(mfs, "process_resident_memory_bytes"),
	}
}

// TestSoak runs CRADLE_SOAK_PODS pod lifecycles (1000, about two minutes
// here), 8 at a time, and asserts zero errors, zero leaks, and the
// daemon's goroutines, FDs and RSS back within a small margin afterwards.
func TestSoak(t *testing.T) {
	total := envInt(t, "CRADLE_SOAK_PODS", 1000)
	const parallel = 8
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := newDaemon(t, withMetrics(addr))
	d.pull(t, busybox)
	c, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	// Warm up: the first pod starts what lives for the daemon's lifetime
	// (the CNI config cache, the streaming server's connections, pools).
	for i := range parallel {
		if err := d.lifecycle(c, -1-i); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	before := figures(t, addr)
	start := time.Now()
	var next, failed atomic.Int64
	var mu sync.Mutex
	var errs []string
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for {
				n := int(next.Add(1))
				if n > total || failed.Load() > 10 {
					return
				}
				if err := d.lifecycle(c, n); err != nil {
					failed.Add(1)
					mu.Lock()
					errs = append(errs, fmt.Sprintf("pod %d: %v", n, err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d of %d lifecycles failed:\n%s", len(errs), total, strings.Join(errs, "\n"))
	}
	// Goroutines and FDs of finished work go away; wait for them rather
	// than for a fixed time. RSS is the Go heap's high-water mark, so it
	// gets a margin of its own.
	var after processFigures
	deadline := time.Now().Add(30 * time.Second)
	for {
		after = figures(t, addr)
		if after.goroutines <= before.goroutines+5 && after.fds <= before.fds+5 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after %d lifecycles: %s; before: %s", total, after, before)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	const rssMargin = 40 << 20
	if after.rss > before.rss+rssMargin {
		t.Errorf("RSS grew by %.1f MiB over %d lifecycles (margin %d MiB)", (after.rss-before.rss)/(1<<20), total, rssMargin>>20)
	}
	t.Logf("soak: %d lifecycles, %d at a time, in %s (%.1f/s), 0 errors; before: %s; after: %s",
		total, parallel, took.Round(time.Second), float64(total)/took.Seconds(), before, after)
	if st := d.hostState(t); len(st) > 0 {
		t.Errorf("left after the soak: %v", st)
	}
}

// TestChaosKill9 kills the daemon with SIGKILL at random moments while 8
// workers create and remove pods, CRADLE_CHAOS_ROUNDS times (10). After
// each restart it finishes the work with Stop and Remove, and nothing may
// be left. The seed (CRADLE_CHAOS_SEED, else the clock) is printed so a
// failure can be replayed.
func TestChaosKill9(t *testing.T) {
	rounds := envInt(t, "CRADLE_CHAOS_ROUNDS", 10)
	seed := uint64(envInt(t, "CRADLE_CHAOS_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("chaos: seed %d (rerun with CRADLE_CHAOS_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	d := newDaemon(t)
	d.pull(t, busybox)
	n := 0
	for round := 1; round <= rounds; round++ {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var done atomic.Int64
		for range 8 {
			n++
			base := n * 1000
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					c, cancel := context.WithTimeout(context.Background(), time.Minute)
					if d.lifecycle(c, base+i) == nil {
						done.Add(1)
					}
					cancel()
				}
			})
		}
		killAfter := time.Duration(200+rng.IntN(2800)) * time.Millisecond
		time.Sleep(killAfter) // the random moment is the point, not a synchronisation
		d.kill9()
		close(stop)
		wg.Wait()
		d.start()
		left := d.finishWork(t)
		t.Logf("chaos round %d: kill -9 after %s; %d lifecycles completed; %d pods finished after the restart", round, killAfter, done.Load(), left)
		if st := d.hostState(t); len(st) > 0 {
			t.Fatalf("round %d: left after Stop and Remove: %v", round, st)
		}
	}
}

// finishWork stops and removes every pod (and so every container) the
// daemon knows, as the kubelet does after a runtime restart, and returns
// how many there were.
func (d *daemon) finishWork(t *testing.T) int {
	t.Helper()
	c := ctx(t)
	ctrs, err := d.rt.ListContainers(c, &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range ctrs.GetContainers() {
		if _, err := d.rt.StopContainer(c, &runtimeapi.StopContainerRequest{ContainerId: ct.GetId()}); err != nil {
			t.Errorf("StopContainer %s: %v", ct.GetId(), err)
		}
		if _, err := d.rt.RemoveContainer(c, &runtimeapi.RemoveContainerRequest{ContainerId: ct.GetId()}); err != nil {
			t.Errorf("RemoveContainer %s: %v", ct.GetId(), err)
		}
	}
	pods, err := d.rt.ListPodSandbox(c, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.GetItems() {
		if _, err := d.rt.StopPodSandbox(c, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("StopPodSandbox %s: %v", p.GetId(), err)
		}
		if _, err := d.rt.RemovePodSandbox(c, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
			t.Errorf("RemovePodSandbox %s: %v", p.GetId(), err)
		}
	}
	return len(pods.GetItems())
}
