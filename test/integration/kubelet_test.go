package integration

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// webPod: an init container fills an emptyDir, busybox httpd serves it, a
// client in the same network namespace fetches it from 127.0.0.1. Exec
// liveness and HTTP readiness probes, downward-API env, requests and
// limits (the kubelet then sends cgroup settings and a zero hugepage limit
// per page size).
const webPod = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  volumes:
  - name: data
    emptyDir: {}
  initContainers:
  - name: init
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "echo hello from init > /data/index.html"]
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: httpd
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["httpd", "-f", "-p", "8080", "-h", "/data"]
    volumeMounts: [{name: data, mountPath: /data}]
    resources:
      requests: {cpu: 100m, memory: 32Mi}
      limits: {cpu: 200m, memory: 64Mi}
    livenessProbe:
      exec: {command: ["cat", "/data/index.html"]}
      periodSeconds: 2
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
  - name: client
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "echo env name=$POD_NAME ns=$POD_NS node=$NODE ip=$POD_IP; while true; do wget -q -O - http://127.0.0.1:8080/index.html; sleep 1; done"]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
`

const sharedPIDPod = `apiVersion: v1
kind: Pod
metadata: {name: shared, namespace: default}
spec:
  shareProcessNamespace: true
  containers:
  - name: a
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sleep", "3601"]
  - name: b
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sleep", "3602"]
`

func allRunningReady(p kPod) bool {
	if p.Status.Phase != "Running" || !p.ready() {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil || !c.Ready {
			return false
		}
	}
	return true
}

// criID is cradle's container ID in a kubelet status ("cradle://<id>").
func criID(c kContainer) string {
	_, id, _ := strings.Cut(c.ContainerID, "://")
	return id
}

// The kubelet runs real static pods on cradle: init containers, probes,
// shared network and PID namespaces, downward API, resources; a restart of
// cradle restarts nothing; removing the manifests removes the pods.
func TestKubeletStaticPods(t *testing.T) {
	d := newDaemon(t)
	k := newKubelet(t, d, "")
	k.manifest("web", webPod)
	k.manifest("shared", sharedPIDPod)

	web := k.waitPod("web", 3*time.Minute, "web Running and Ready", allRunningReady)
	t.Logf("kubelet: %v", web)
	if init := web.container("init"); init.State.Terminated == nil || init.State.Terminated.Reason != "Completed" || init.State.Terminated.ExitCode != 0 {
		t.Errorf("init container: %v, want terminated(Completed, 0)", init)
	}
	for _, c := range web.Status.ContainerStatuses {
		if c.RestartCount != 0 {
			t.Errorf("%v: want no restarts", c)
		}
	}
	// The client fetched the init container's file over the shared netns,
	// and saw the downward API.
	client := filepath.Join(k.logDir(web, "client"), "0.log")
	logOf(t, client, "hello from init")
	logOf(t, client, "env name=web-itest-node ns=default node=itest-node ip="+web.Status.PodIP+"\n")

	// The limits reached the container's cgroups.
	httpd := criID(web.container("httpd"))
	for file, want := range map[string]string{
		"/sys/fs/cgroup/memory/memory.limit_in_bytes": strconv.Itoa(64 << 20),
		"/sys/fs/cgroup/cpu/cpu.cfs_quota_us":         "20000",
	} {
		resp, err := d.execSync(t, httpd, 10, "cat", file)
		if err != nil || strings.TrimSpace(string(resp.GetStdout())) != want {
			t.Errorf("%s in httpd: %q (%v), want %s", file, resp.GetStdout(), err, want)
		}
	}

	// This host has no hugetlb controller: the kubelet's zero hugepage
	// limits were dropped, not passed to runc (which would fail).
	if _, err := os.Stat("/sys/fs/cgroup/hugetlb"); err != nil {
		b, _ := os.ReadFile(d.logPath)
		if !regexp.MustCompile(`dropping a limit the host can't enforce" field="?linux\.resources\.hugepage_limits\[`).Match(b) {
			t.Error("no hugepage limit was dropped: did the kubelet send none?")
		}
	}

	shared := k.waitPod("shared", 2*time.Minute, "shared Running", allRunningReady)
	resp, err := d.execSync(t, criID(shared.container("b")), 10, "ps")
	if err != nil || !strings.Contains(string(resp.GetStdout()), "sleep 3601") {
		t.Errorf("ps in b of a shareProcessNamespace pod: %q (%v), want a's sleep 3601", resp.GetStdout(), err)
	}

	t.Run("restart of cradle restarts nothing", func(t *testing.T) {
		before := map[string]string{}
		for _, p := range []kPod{web, shared} {
			for _, c := range p.Status.ContainerStatuses {
				before[p.Metadata.Name+"/"+c.Name] = c.ContainerID + " restarts=" + strconv.Itoa(c.RestartCount)
			}
		}
		st, _ := os.Stat(d.logPath)
		d.kill9()
		d.start()
		// The kubelet relists every second: five relists against the new
		// daemon mean it has seen whatever the restart changed.
		relists := regexp.MustCompile(`method=/runtime.v1.RuntimeService/ListPodSandbox`)
		eventually(t, time.Minute, func() string {
			f, _ := os.Open(d.logPath)
			defer f.Close()
			_, _ = f.Seek(st.Size(), io.SeekStart)
			b, _ := io.ReadAll(f)
			if n := len(relists.FindAll(b, -1)); n < 5 {
				return "the kubelet has relisted " + strconv.Itoa(n) + " times since the restart"
			}
			return ""
		})
		for _, name := range []string{"web", "shared"} {
			p := k.waitPod(name, 30*time.Second, name+" Ready", allRunningReady)
			for _, c := range p.Status.ContainerStatuses {
				now := c.ContainerID + " restarts=" + strconv.Itoa(c.RestartCount)
				if b := before[p.Metadata.Name+"/"+c.Name]; b != now {
					t.Errorf("%s/%s: %s before the restart, %s after", name, c.Name, b, now)
				}
			}
			t.Logf("kubelet after the restart: %v", p)
		}
	})

	t.Run("removing the manifests removes the pods", func(t *testing.T) {
		k.removeManifest("web")
		k.removeManifest("shared")
		// The kubelet stops the pods at once and removes their sandboxes
		// in its next container GC (once a minute).
		eventually(t, 3*time.Minute, func() string {
			resp, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				return err.Error()
			}
			if n := len(resp.GetItems()); n > 0 {
				return strconv.Itoa(n) + " sandboxes left"
			}
			return ""
		})
		if l := d.leaks(); len(l) > 0 {
			t.Errorf("left after the kubelet removed the pods: %v", l)
		}
	})
}

// crashPod exits non-zero after 2 s: the kubelet restarts it with
// back-off. The 2 s let the test see an attempt running, when the one
// before it is the newest dead container, which container GC keeps.
const crashPod = `apiVersion: v1
kind: Pod
metadata: {name: crash, namespace: default}
spec:
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "echo crashing; sleep 2; exit 3"]
`

// chattyPod writes 600 numbered lines of about 100 bytes over about 12 s.
const chattyPod = `apiVersion: v1
kind: Pod
metadata: {name: chatty, namespace: default}
spec:
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; usleep 20000; done; echo done; sleep 3600"]
`

const oomPod = `apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: default}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: registry.k8s.io/e2e-test-images/busybox:1.29-2
    command: ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived"]
    resources:
      limits: {memory: 24Mi}
`

// Restarts with back-off, the previous log, log rotation with
// ReopenContainerLog and no line lost, and OOMKilled, as the kubelet sees
// them.
func TestKubeletRestartsLogsAndOOM(t *testing.T) {
	d := newDaemon(t)
	k := newKubelet(t, d, "containerLogMaxSize: 2Ki\ncontainerLogMaxFiles: 30\ncontainerLogMonitorInterval: 3s\n")
	k.manifest("crash", crashPod)
	k.manifest("chatty", chattyPod)
	k.manifest("hog", oomPod)

	backedOff := false
	crash := k.waitPod("crash", 3*time.Minute, "two restarts with back-off", func(p kPod) bool {
		c := p.container("c")
		if c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" {
			backedOff = true
		}
		return backedOff && c.RestartCount >= 2 && c.State.Running != nil
	})
	c := crash.container("c")
	t.Logf("kubelet: %v", crash)
	if lt := c.LastState.Terminated; lt == nil || lt.ExitCode != 3 || lt.Reason != "Error" {
		t.Errorf("last state %+v, want terminated(Error, 3)", lt)
	}
	// The previous attempt's log, where `kubectl logs --previous` reads it:
	// attempt N runs, so N-1 is the one before.
	prev := filepath.Join(k.logDir(crash, "c"), strconv.Itoa(c.RestartCount-1)+".log")
	logOf(t, prev, "crashing")

	hog := k.waitPod("hog", 2*time.Minute, "hog terminated", func(p kPod) bool { return p.container("c").State.Terminated != nil })
	if term := hog.container("c").State.Terminated; term.Reason != "OOMKilled" {
		t.Errorf("kubelet: %v, want OOMKilled", hog)
	} else {
		t.Logf("kubelet: %v", hog)
	}

	chatty := k.waitPod("chatty", 2*time.Minute, "chatty Running", allRunningReady)
	dir := k.logDir(chatty, "c")
	var lines map[int]int
	eventually(t, 2*time.Minute, func() string {
		var done bool
		lines, done = readRotatedLog(t, dir)
		if !done {
			return "chatty has not written its last line yet"
		}
		return ""
	})
	files := dirEntries(dir)
	if len(files) < 3 {
		t.Errorf("log files %v: want the kubelet to have rotated the 60 kB log at 2 KiB", files)
	}
	for i := 1; i <= 600; i++ {
		if lines[i] != 1 {
			t.Errorf("line %d appears %d times across %v", i, lines[i], files)
		}
	}
	b, _ := os.ReadFile(d.logPath)
	if !bytes.Contains(b, []byte("method=/runtime.v1.RuntimeService/ReopenContainerLog")) {
		t.Error("the kubelet never called ReopenContainerLog")
	}
	t.Logf("chatty's log: %d files after rotation, 600 lines each once", len(files))
}

var chattyLine = regexp.MustCompile(` stdout F line-(\d+)-x+$`)

// readRotatedLog counts the numbered lines in every file of a container's
// log directory, rotated and gzipped ones included; done reports the last
// line was seen.
func readRotatedLog(t *testing.T, dir string) (map[int]int, bool) {
	t.Helper()
	lines, done := map[int]int{}, false
	for _, name := range dirEntries(dir) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue // rotated away meanwhile
		}
		if strings.HasSuffix(name, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				continue
			}
			b, _ = io.ReadAll(zr)
		} else if strings.HasSuffix(name, ".tmp") {
			continue // being compressed
		}
		for _, l := range strings.Split(string(b), "\n") {
			if m := chattyLine.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				lines[n]++
			} else if strings.HasSuffix(l, " stdout F done") {
				done = true
			}
		}
	}
	return lines, done
}
