package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/kubeletconf"
)

// kubelet is a standalone kubelet (no API server: static pods from a
// manifest directory) on a cradle daemon, with its own root dir, log dir,
// cgroup root and ports.
type kubelet struct {
	t         *testing.T
	d         *daemon
	dir       string
	manifests string
	logs      string // podLogsDir
	cgroot    string // cgroupRoot, e.g. /kubelet-itest-123-4
	node      string
	port      int // read-only port, on 127.0.0.1
	logPath   string
	cmd       *exec.Cmd
}

func kubeletBin(t *testing.T) string {
	b := os.Getenv("CRADLE_TEST_KUBELET")
	if b == "" {
		t.Skip("CRADLE_TEST_KUBELET is not set (hack/install-kubelet.sh builds one; make test sets it)")
	}
	return b
}

// newKubelet starts a kubelet on d. extra is appended to its
// KubeletConfiguration (YAML, top-level keys).
func newKubelet(t *testing.T, d *daemon, extra string) *kubelet {
	t.Helper()
	bin := kubeletBin(t)
	k := &kubelet{t: t, d: d, dir: t.TempDir(), node: "itest-node"}
	k.manifests = filepath.Join(k.dir, "manifests")
	k.logs = filepath.Join(k.dir, "pod-logs")
	k.logPath = filepath.Join(k.dir, "kubelet.log")
	k.cgroot = "/kubelet" + strings.TrimPrefix(d.cgroup, "/cradle")
	k.port = freePort(t)
	for _, p := range []string{k.manifests, k.logs} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := kubeletconf.MakeCgroupRoot(k.cgroot); err != nil {
		t.Fatal(err)
	}
	// Runs after the daemon's own leak check was registered, so before it:
	// the kubelet is gone before cradle is judged.
	t.Cleanup(k.cleanup)
	cfg := kubeletconf.Config(kubeletconf.Options{
		StaticPodPath: k.manifests, Socket: d.sock, CgroupRoot: k.cgroot, PodLogsDir: k.logs,
		ReadOnlyPort: k.port, Port: freePort(t), HealthzPort: freePort(t), Extra: extra,
	})
	cfgPath := filepath.Join(k.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(k.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	k.cmd = exec.Command(bin, "--config", cfgPath, "--root-dir", filepath.Join(k.dir, "root"),
		"--hostname-override", k.node, "--v=2")
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kubelet: %v", err)
	}
	eventually(t, 60*time.Second, func() string {
		if _, err := k.pods(); err != nil {
			return "kubelet's read-only port: " + err.Error()
		}
		return ""
	})
	return k
}

// manifest writes a static pod manifest (YAML).
func (k *kubelet) manifest(name, yaml string) {
	k.t.Helper()
	if err := os.WriteFile(filepath.Join(k.manifests, name+".yaml"), []byte(yaml), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *kubelet) removeManifest(name string) {
	k.t.Helper()
	if err := os.Remove(filepath.Join(k.manifests, name+".yaml")); err != nil {
		k.t.Fatal(err)
	}
}

// Pod status as the kubelet's /pods endpoint reports it: only the fields
// the tests read.
type kPod struct {
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		PodIP      string `json:"podIP"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
		InitContainerStatuses []kContainer `json:"initContainerStatuses"`
		ContainerStatuses     []kContainer `json:"containerStatuses"`
	} `json:"status"`
}

type kContainer struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int    `json:"restartCount"`
	ContainerID  string `json:"containerID"`
	State        struct {
		Running    *struct{} `json:"running"`
		Waiting    *kReason  `json:"waiting"`
		Terminated *kReason  `json:"terminated"`
	} `json:"state"`
	LastState struct {
		Terminated *kReason `json:"terminated"`
	} `json:"lastState"`
}

type kReason struct {
	Reason   string `json:"reason"`
	ExitCode int    `json:"exitCode"`
}

func (c kContainer) String() string {
	s := "?"
	switch {
	case c.State.Running != nil:
		s = "running"
	case c.State.Waiting != nil:
		s = "waiting(" + c.State.Waiting.Reason + ")"
	case c.State.Terminated != nil:
		s = fmt.Sprintf("terminated(%s, %d)", c.State.Terminated.Reason, c.State.Terminated.ExitCode)
	}
	return fmt.Sprintf("%s: %s ready=%v restarts=%d", c.Name, s, c.Ready, c.RestartCount)
}

func (p kPod) String() string {
	var cs []string
	for _, c := range append(append([]kContainer{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		cs = append(cs, c.String())
	}
	return fmt.Sprintf("pod %s phase=%s ready=%v ip=%s [%s]", p.Metadata.Name, p.Status.Phase, p.ready(), p.Status.PodIP, strings.Join(cs, "; "))
}

func (p kPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

func (p kPod) container(name string) kContainer {
	for _, c := range append(append([]kContainer{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if c.Name == name {
			return c
		}
	}
	return kContainer{Name: name}
}

func (k *kubelet) pods() (map[string]kPod, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/pods", k.port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Items []kPod `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	out := map[string]kPod{}
	for _, p := range list.Items {
		out[strings.TrimSuffix(p.Metadata.Name, "-"+k.node)] = p
	}
	return out, nil
}

// waitPod polls the kubelet until cond holds for the static pod name and
// returns the pod as the kubelet last reported it.
func (k *kubelet) waitPod(name string, timeout time.Duration, what string, cond func(kPod) bool) kPod {
	k.t.Helper()
	var last kPod
	eventually(k.t, timeout, func() string {
		pods, err := k.pods()
		if err != nil {
			return what + ": " + err.Error()
		}
		p, ok := pods[name]
		if !ok {
			return what + ": the kubelet reports no pod " + name
		}
		if last = p; !cond(p) {
			return what + ": " + p.String()
		}
		return ""
	})
	return last
}

// logDir is the kubelet's log directory of a container of a static pod.
func (k *kubelet) logDir(p kPod, ctr string) string {
	return filepath.Join(k.logs, fmt.Sprintf("default_%s_%s", p.Metadata.Name, p.Metadata.UID), ctr)
}

func (k *kubelet) dumpLog() {
	f, err := os.Open(k.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	var lines []string
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "E") || strings.HasPrefix(l, "W") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	k.t.Logf("kubelet errors and warnings (last %d):\n%s", len(lines), strings.Join(lines, "\n"))
}

// stop ends the kubelet; the pods it ran stay in cradle.
func (k *kubelet) stop() {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = k.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = k.cmd.Process.Kill()
		<-done
	}
	k.cmd = nil
}

// cleanup stops the kubelet, releases what cradle still runs for it,
// fails the test for cgroups cradle left under the kubelet's root, and
// then removes the kubelet's own cgroups and mounts.
func (k *kubelet) cleanup() {
	if k.t.Failed() {
		k.dumpLog()
	}
	k.stop()
	if k.d.cmd != nil {
		if resp, err := k.d.rt.ListPodSandbox(ctx(k.t), nil); err == nil {
			for _, s := range resp.GetItems() {
				k.d.removePod(k.t, s.GetId())
			}
		}
	}
	for _, c := range kubeletconf.Controllers {
		root := filepath.Join("/sys/fs/cgroup", c, k.cgroot)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
				if strings.HasPrefix(e.Name(), "cradle-") {
					k.t.Errorf("leaked: cgroup %s", p)
				}
			}
			return nil
		})
		// Deepest first.
		sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
		for _, p := range dirs {
			_ = os.Remove(p)
		}
	}
	unmountUnder(k.dir)
}
