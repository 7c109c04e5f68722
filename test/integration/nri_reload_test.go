package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nriEventsEnv names the file a pre-installed plugin process (this test
// binary, run by TestNRIPluginProcess) appends its events to.
const nriEventsEnv = "CRADLE_ITEST_NRI_EVENTS"

// fileRecorder is the pre-installed plugin: it appends "Event:id" lines,
// and "Started:pid" first, to a file the test reads.
type fileRecorder struct{ f *os.File }

func (p *fileRecorder) record(ev, id string) {
	// One write per line: O_APPEND keeps lines whole.
	if _, err := p.f.WriteString(ev + ":" + id + "\n"); err != nil {
		fmt.Fprintln(os.Stderr, "record NRI event:", err)
	}
}

func (p *fileRecorder) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	for _, pod := range pods {
		p.record("Synchronize", pod.GetId())
	}
	for _, c := range ctrs {
		p.record("Synchronize", c.GetId())
	}
	p.record("Synchronized", strconv.Itoa(os.Getpid()))
	return nil, nil
}

func (p *fileRecorder) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer", c.GetId())
	return nil, nil, nil
}

// TestNRIPluginProcess is not a test: the daemon runs this binary as a
// pre-installed NRI plugin (see installNRIPlugin); it is skipped otherwise.
func TestNRIPluginProcess(t *testing.T) {
	path := os.Getenv(nriEventsEnv)
	if path == "" {
		t.Skip("runs only as a pre-installed NRI plugin")
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p := &fileRecorder{f: f}
	p.record("Started", strconv.Itoa(os.Getpid()))
	// Name, index and connection come from the daemon's environment.
	s, err := stub.New(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err != nil {
		p.record("Ended", err.Error())
	}
}

// installNRIPlugin puts a plugin in dir that records to events.
func installNRIPlugin(t *testing.T, dir, events string) {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nexport %s=%q\nexec %q -test.run='^TestNRIPluginProcess$'\n", nriEventsEnv, events, bin)
	if err := os.WriteFile(filepath.Join(dir, "20-recorder"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// pluginEvents lists the recorded events of ids, and the pids of the
// plugin processes that were synchronized, in order.
func pluginEvents(path string, ids ...string) (events []string, pids []int) {
	b, _ := os.ReadFile(path)
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ev, id, _ := strings.Cut(l, ":")
		if ev == "Synchronized" {
			pid, _ := strconv.Atoi(id)
			pids = append(pids, pid)
		}
		if slicesContain(ids, id) {
			events = append(events, ev+":"+id)
		}
	}
	return events, pids
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// NRI is started, restarted on a new socket and stopped by SIGHUP as at
// daemon start and stop: external and pre-installed plugins synchronize
// with what runs, get hooks while it is on and none once it is off; a
// restart that cannot succeed fails the reload and keeps NRI as it was.
// UpdateContainerResources runs throughout, so that CRI calls meet every
// swap (and a race detector build of the daemon sees them).
func TestSIGHUPReloadsNRI(t *testing.T) {
	events := filepath.Join(t.TempDir(), "plugin-events")
	d := newDaemon(t, func(d *daemon) {
		installNRIPlugin(t, filepath.Join(d.dir, "nri", "plugins"), events)
		d.dropin(t, "40-nri.toml", "[nri]\nenable = false\n")
	})
	d.pull(t, busybox)
	if exists(d.nriSocket()) {
		t.Fatal("NRI socket served while NRI is disabled")
	}
	podCfg := d.podConfig(t, "nri-reload")
	pod := d.runPod(t, podCfg)
	c1 := d.startContainer(t, pod, podCfg, containerConfig("c1", "sleep", "1000"))
	if exists(events) {
		t.Fatal("pre-installed plugin started while NRI is disabled")
	}

	stop, polled := make(chan struct{}), make(chan error, 1)
	go func() {
		var err error
		var n int
		for err == nil {
			select {
			case <-stop:
				polled <- nil
				return
			default:
			}
			n++
			_, err = d.rt.UpdateContainerResources(ctx(t), &runtimeapi.UpdateContainerResourcesRequest{
				ContainerId: c1, Linux: &runtimeapi.LinuxContainerResources{CpuShares: int64(2 + n%100)},
			})
		}
		polled <- err
	}()
	defer func() {
		close(stop)
		if err := <-polled; err != nil {
			t.Errorf("UpdateContainerResources during reloads: %v", err)
		}
	}()

	// Enable: the socket is served; both plugins synchronize with the pod
	// and its container and see the next container created.
	d.dropin(t, "40-nri.toml", "")
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=nri.enable old=false new=true`) ||
		!strings.Contains(log, `msg="NRI enabled"`) {
		t.Fatalf("enabling NRI was not logged:\n%s", log)
	}
	ext, ended := d.connectNRIAt(t, d.nriSocket())
	if got := ext.eventsOf(pod, c1); !slicesContain(got, "Synchronize") || len(got) != 2 {
		t.Fatalf("external plugin's Synchronize listed %v of the pod and c1, want both", got)
	}
	var pids []int
	eventually(t, 20*time.Second, func() string {
		var got []string
		if got, pids = pluginEvents(events, pod, c1); len(got) != 2 || len(pids) != 1 {
			return fmt.Sprintf("pre-installed plugin synchronized %d time(s) with %v, want once with the pod and c1", len(pids), got)
		}
		return ""
	})
	firstPID := pids[0]
	c2 := d.startContainer(t, pod, podCfg, containerConfig("c2", "sh", "-c", "echo NRI=$NRI_INJECTED; exec sleep 1000"))
	logOf(t, filepath.Join(podCfg.LogDirectory, "c2.log"), "NRI=hello-from-nri")
	if got := ext.eventsOf(c2); !slicesContain(got, "CreateContainer") || !slicesContain(got, "StartContainer") {
		t.Errorf("external plugin's hooks for c2: %v", got)
	}
	if got, _ := pluginEvents(events, c2); !slicesContain(got, "CreateContainer:"+c2) {
		t.Errorf("pre-installed plugin's hooks for c2: %v", got)
	}

	// A new socket path: the old socket goes, the old plugins are
	// disconnected or stopped, new ones synchronize.
	sock2 := filepath.Join(d.runroot, "nri2", "nri.sock")
	d.dropin(t, "40-nri.toml", fmt.Sprintf("[nri]\nsocket_path = %q\n", sock2))
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=nri.socket_path`) ||
		!strings.Contains(log, `msg="NRI restarted with new settings"`) {
		t.Fatalf("the socket change was not logged:\n%s", log)
	}
	if exists(d.nriSocket()) || !exists(sock2) {
		t.Fatalf("after the socket change: old socket exists %v, new socket exists %v", exists(d.nriSocket()), exists(sock2))
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the external plugin of the old socket stayed connected")
	}
	if alive(firstPID) {
		t.Errorf("the first pre-installed plugin process %d outlived the restart", firstPID)
	}
	eventually(t, 20*time.Second, func() string {
		if got, pids := pluginEvents(events, c2); len(pids) != 2 || !slicesContain(got, "Synchronize:"+c2) {
			return fmt.Sprintf("pre-installed plugin synchronized %d time(s), c2 events %v; want a second time with c2", len(pids), got)
		}
		return ""
	})
	ext2, _ := d.connectNRIAt(t, sock2)
	if got := ext2.eventsOf(pod, c1, c2); len(got) != 3 {
		t.Fatalf("the new socket's plugin synchronized with %v, want the pod, c1 and c2", got)
	}

	// A socket path that cannot be made fails the reload; NRI stays on
	// the running socket and its plugin keeps getting hooks.
	file := filepath.Join(d.dir, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.dropin(t, "40-nri.toml", fmt.Sprintf("[nri]\nsocket_path = %q\n", filepath.Join(file, "nri.sock")))
	if log := d.reload(t); !strings.Contains(log, `msg="config reload failed; keeping the running config"`) || !strings.Contains(log, "nri.socket_path") {
		t.Fatalf("an impossible socket path did not fail the reload:\n%s", log)
	}
	c3 := d.startContainer(t, pod, podCfg, containerConfig("c3", "sleep", "1000"))
	if got := ext2.eventsOf(c3); !slicesContain(got, "CreateContainer") {
		t.Errorf("after the failed reload the plugin got %v for c3, want CreateContainer", got)
	}

	// Disable: socket and plugin process gone, no hook for a new container.
	_, pids = pluginEvents(events)
	d.dropin(t, "40-nri.toml", fmt.Sprintf("[nri]\nenable = false\nsocket_path = %q\n", sock2))
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=nri.enable old=true new=false`) ||
		!strings.Contains(log, `msg="NRI disabled: plugins stopped, socket removed"`) {
		t.Fatalf("disabling NRI was not logged:\n%s", log)
	}
	if exists(sock2) {
		t.Error("the NRI socket outlived disabling NRI")
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pre-installed plugin process %d outlived disabling NRI", pid)
		}
	}
	c4 := d.startContainer(t, pod, podCfg, containerConfig("c4", "sh", "-c", "echo NRI=[$NRI_INJECTED]; exec sleep 1000"))
	logOf(t, filepath.Join(podCfg.LogDirectory, "c4.log"), "NRI=[]")
	if got := ext2.eventsOf(c4); len(got) != 0 {
		t.Errorf("a disabled NRI relayed %v for c4", got)
	}
	if got, _ := pluginEvents(events, c4); len(got) != 0 {
		t.Errorf("a disabled NRI relayed %v for c4 to the pre-installed plugin", got)
	}
}
