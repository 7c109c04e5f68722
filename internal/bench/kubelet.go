package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/deathsig"
	"github.com/cradle-runtime/cradle/internal/kubeletconf"
	"golang.org/x/sys/unix"
)

// Kubelet is the kubelet-level workload: a standalone kubelet (no API
// server) on each runtime in turn, starting Pods static pods at once.
type Kubelet struct {
	Bin        string // the kubelet binary
	Pods       int
	Dir        string // the kubelets' root, config and log dirs go below it; removed at the end
	CgroupRoot string // the kubelets' cgroupRoot parent (<root>/<runtime>); removed at the end
	Timeout    time.Duration
}

// MaxKubeletPods bounds the kubelet workload (the kubelet's maxPods is 110).
const MaxKubeletPods = 100

// KubeletResult is the kubelet workload on one runtime.
type KubeletResult struct {
	Pods       int           `json:"pods"`
	AllRunning time.Duration `json:"all_running_ns"` // manifests written to every pod Running in /pods
	Running    Summary       `json:"running"`        // each pod: manifests written to Running in /pods (polled every 50 ms)
	PodStart   HistQuantile  `json:"pod_start_p50"`  // kubelet_pod_start_duration_seconds
	SLI        HistQuantile  `json:"sli_p50"`        // kubelet_pod_start_sli_duration_seconds
}

// KubeletResults is the kubelet workload on every runtime, by name.
type KubeletResults struct {
	Pods     int                       `json:"pods"`
	Runtimes map[string]*KubeletResult `json:"runtimes"`
}

// kubeletRun is one kubelet process and its files.
type kubeletRun struct {
	dir, manifests, cgroot string
	ro, healthz            int
	cmd                    *exec.Cmd
	exited                 chan struct{}
	http                   *http.Client
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startKubelet starts a kubelet on c's socket and waits for its health.
func (b *bench) startKubelet(ctx context.Context, c *client, k Kubelet) (*kubeletRun, error) {
	r := &kubeletRun{dir: filepath.Join(k.Dir, c.t.Name), cgroot: filepath.Join(k.CgroupRoot, c.t.Name),
		http: &http.Client{Timeout: 5 * time.Second}}
	r.manifests = filepath.Join(r.dir, "manifests")
	for _, d := range []string{r.manifests, filepath.Join(r.dir, "pod-logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, err
		}
	}
	if err := kubeletconf.MakeCgroupRoot(r.cgroot); err != nil {
		return r, err
	}
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return r, err
		}
		ports[i] = p
	}
	r.ro, r.healthz = ports[0], ports[1]
	cfg := kubeletconf.Config(kubeletconf.Options{
		StaticPodPath: r.manifests, Socket: c.t.SocketPath(), CgroupRoot: r.cgroot,
		PodLogsDir:   filepath.Join(r.dir, "pod-logs"),
		ReadOnlyPort: r.ro, Port: ports[2], HealthzPort: r.healthz,
		Extra: "serializeImagePulls: false",
	})
	cfgPath := filepath.Join(r.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return r, err
	}
	logf, err := os.Create(filepath.Join(r.dir, "kubelet.log"))
	if err != nil {
		return r, err
	}
	defer logf.Close()
	r.cmd = exec.Command(k.Bin, "--config", cfgPath, "--root-dir", filepath.Join(r.dir, "root"),
		"--hostname-override", "cradle-bench-"+c.t.Name, "--v=1")
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	waited, err := deathsig.Start(r.cmd, syscall.SIGTERM)
	if err != nil {
		return r, fmt.Errorf("start kubelet: %w", err)
	}
	r.exited = make(chan struct{})
	go func() { <-waited; close(r.exited) }()
	b.log.Info("kubelet started", "runtime", c.t.Name, "pid", r.cmd.Process.Pid, "dir", r.dir)
	err = r.poll(ctx, time.Minute, func() (bool, error) {
		body, err := r.get(fmt.Sprintf("http://127.0.0.1:%d/healthz", r.healthz))
		return err == nil && strings.TrimSpace(body) == "ok", nil
	})
	if err != nil {
		return r, fmt.Errorf("kubelet on %s not healthy (see %s): %w", c.t.Name, filepath.Join(r.dir, "kubelet.log"), err)
	}
	return r, nil
}

func (r *kubeletRun) get(url string) (string, error) {
	resp, err := r.http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(body), err
}

// poll calls f every 50 ms until it says done, the kubelet exits, or the
// timeout; the interval is the resolution of what it times.
func (r *kubeletRun) poll(ctx context.Context, timeout time.Duration, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.exited:
			return errors.New("the kubelet exited")
		case <-t.C:
		}
	}
}

// podPhases counts the pods of the kubelet's /pods by phase; running, if
// not nil, gets the names of the Running ones.
func (r *kubeletRun) podPhases(running map[string]bool) (map[string]int, int, error) {
	body, err := r.get(fmt.Sprintf("http://127.0.0.1:%d/pods", r.ro))
	if err != nil {
		return nil, 0, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, 0, fmt.Errorf("kubelet /pods: %w", err)
	}
	n := map[string]int{}
	for _, p := range list.Items {
		n[p.Status.Phase]++
		if running != nil && p.Status.Phase == "Running" {
			running[p.Metadata.Name] = true
		}
	}
	return n, len(list.Items), nil
}

// staticPod is a manifest of one busybox pod, labelled with the run so
// that the sweep finds its sandbox whatever happens.
func (b *bench) staticPod(i int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: kbench-%d
  namespace: default
  labels: {%q: %q}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: sleep
    image: %s
    imagePullPolicy: IfNotPresent
    command: [%s]
`, i, LabelRun, b.w.RunID, b.cfg.Image, quoteList(b.cfg.Command))
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// kubelet runs the kubelet workload on c: start the kubelet, write the
// manifests (each renamed into place, so the kubelet never reads half a
// file), time until all pods are Running, read the histograms, then
// remove the pods, the kubelet and its cgroups and files.
func (b *bench) kubelet(ctx context.Context, c *client, k Kubelet) (res *KubeletResult, err error) {
	r, err := b.startKubelet(ctx, c, k)
	defer func() { err = errors.Join(err, b.stopKubelet(ctx, c, r)) }()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	for i := 0; i < k.Pods; i++ {
		p := filepath.Join(r.manifests, fmt.Sprintf("kbench-%d.yaml", i))
		if err := os.WriteFile(filepath.Join(r.manifests, fmt.Sprintf(".kbench-%d.tmp", i)), []byte(b.staticPod(i)), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(filepath.Join(r.manifests, fmt.Sprintf(".kbench-%d.tmp", i)), p); err != nil {
			return nil, err
		}
	}
	res = &KubeletResult{Pods: k.Pods}
	var last map[string]int
	seen := map[string]time.Duration{} // pod name -> first seen Running
	var times []time.Duration
	err = r.poll(ctx, k.Timeout, func() (bool, error) {
		running := map[string]bool{}
		phases, _, err := r.podPhases(running)
		now := time.Since(start)
		for n := range running {
			if _, ok := seen[n]; !ok {
				seen[n] = now
				times = append(times, now)
			}
		}
		last = phases
		return err == nil && phases["Running"] == k.Pods, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %d static pods not all running (phases %v): %w", c.t.Name, k.Pods, last, err)
	}
	res.AllRunning = time.Since(start)
	res.Running = Summarize(times)
	body, err := r.get(fmt.Sprintf("http://127.0.0.1:%d/metrics", r.ro))
	if err != nil {
		return nil, fmt.Errorf("kubelet metrics: %w", err)
	}
	fams, err := parseMetrics(strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, MetricPodStart) || strings.HasPrefix(l, MetricPodStartSLI) {
			b.log.Debug("kubelet histogram", "runtime", c.t.Name, "line", l)
		}
	}
	// The kubelet observes kubelet_pod_start_duration_seconds twice per
	// pod, at its first sync and when the pod runs, so Count is 2 x Pods.
	if res.PodStart, err = histogramQuantile(fams, MetricPodStart, 0.5); err != nil {
		return nil, err
	}
	if res.SLI, err = histogramQuantile(fams, MetricPodStartSLI, 0.5); err != nil {
		return nil, err
	}
	b.log.Info("kubelet pods running", "runtime", c.t.Name, "pods", k.Pods, "ms", ms(res.AllRunning), "running_p50_ms", ms(res.Running.P50),
		"pod_start_p50_s", res.PodStart.Value, "pod_start_n", res.PodStart.Count, "sli_n", res.SLI.Count)
	// Removing the manifests makes the kubelet stop the pods.
	for i := 0; i < k.Pods; i++ {
		if err := os.Remove(filepath.Join(r.manifests, fmt.Sprintf("kbench-%d.yaml", i))); err != nil {
			return res, err
		}
	}
	err = r.poll(ctx, 2*time.Minute, func() (bool, error) {
		_, n, err := r.podPhases(nil)
		return err == nil && n == 0, nil
	})
	if err != nil {
		return res, fmt.Errorf("%s: the kubelet did not remove its pods: %w", c.t.Name, err)
	}
	return res, nil
}

// stopKubelet stops the kubelet, removes the sandboxes it left (the
// kubelet stops pods, and would garbage-collect them only later), then its
// cgroups, mounts and files.
func (b *bench) stopKubelet(ctx context.Context, c *client, r *kubeletRun) error {
	if r == nil {
		return nil
	}
	var errs []error
	if r.cmd != nil && r.exited != nil {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.exited:
		case <-time.After(20 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	sbs, _, err := c.runPods(cctx, b.w.RunID)
	errs = append(errs, err)
	for _, id := range sbs {
		errs = append(errs, c.removePod(cctx, id))
	}
	if err := removeCgroupTree(r.cgroot); err != nil {
		errs = append(errs, err)
	}
	unmountUnder(r.dir)
	errs = append(errs, os.RemoveAll(r.dir))
	return errors.Join(errs...)
}

// unmountUnder lazily unmounts whatever the kubelet left mounted below dir,
// deepest first, so that RemoveAll does not descend into a mount.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mps = append(mps, f[4])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}

// kubeletAll runs the kubelet workload on every runtime, one after the
// other (a kubelet of each at once would halve both's CPU).
func (b *bench) kubeletAll(ctx context.Context, k Kubelet) (*KubeletResults, error) {
	out := &KubeletResults{Pods: k.Pods, Runtimes: map[string]*KubeletResult{}}
	for _, c := range b.clients {
		r, err := b.kubelet(ctx, c, k)
		if r != nil {
			out.Runtimes[c.t.Name] = r
		}
		if err != nil {
			return out, err
		}
	}
	_ = os.Remove(k.Dir)
	return out, removeCgroupTree(k.CgroupRoot)
}
