package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// withMetrics turns the metrics endpoint (and pprof) on at a free port.
func withMetrics(addr string) option {
	return withConfig(fmt.Sprintf("[metrics]\naddress = %q\npprof = true", addr))
}

// scrape reads the daemon's /metrics with Prometheus' own text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	return mfs
}

// metricValue is the value of the sample of family name whose labels
// include all of labels (name=value pairs); -1 when there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

func TestMetricsEndpoint(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := newDaemon(t, withMetrics(addr))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "metrics")
	pod := d.runPod(t, cfg)
	d.startContainer(t, pod, cfg, containerConfig("m", "sleep", "1000"))
	_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{})
	if err == nil {
		t.Fatal("RunPodSandbox without a config succeeded")
	}

	mfs := scrape(t, addr)
	for _, c := range []struct {
		name   string
		labels []string
		want   func(float64) bool
	}{
		{"cradle_cri_operations_total", []string{"method", "RunPodSandbox", "code", "OK"}, func(v float64) bool { return v == 1 }},
		{"cradle_cri_operations_total", []string{"method", "RunPodSandbox", "code", "InvalidArgument"}, func(v float64) bool { return v == 1 }},
		{"cradle_cri_operations_total", []string{"method", "StartContainer", "code", "OK"}, func(v float64) bool { return v == 1 }},
		{"cradle_cri_operation_duration_seconds", []string{"method", "RunPodSandbox"}, func(v float64) bool { return v == 2 }},
		{"cradle_sandboxes", []string{"state", "READY"}, func(v float64) bool { return v == 1 }},
		{"cradle_containers", []string{"state", "CONTAINER_RUNNING"}, func(v float64) bool { return v == 1 }},
		{"go_goroutines", nil, func(v float64) bool { return v > 0 }},
		{"process_open_fds", nil, func(v float64) bool { return v > 0 }},
		{"process_resident_memory_bytes", nil, func(v float64) bool { return v > 1<<20 }},
	} {
		if v := metricValue(mfs, c.name, c.labels...); !c.want(v) {
			t.Errorf("%s%v = %v", c.name, c.labels, v)
		}
	}

	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile:") {
		t.Errorf("pprof goroutine profile: %s %.200q", resp.Status, b)
	}
}

// histCount is the number of observations of a histogram sample (labels
// as in metricValue), 0 when the series does not exist yet.
func histCount(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	return max(metricValue(mfs, name, labels...), 0)
}

// seriesCheck wants the sample of name with labels to move by want
// between two scrapes; an absent series counts as 0.
type seriesCheck struct {
	name   string
	labels []string
	want   float64
}

func checkDeltas(t *testing.T, step string, before, after map[string]*dto.MetricFamily, checks ...seriesCheck) {
	t.Helper()
	for _, c := range checks {
		if got := histCount(after, c.name, c.labels...) - histCount(before, c.name, c.labels...); got != c.want {
			t.Errorf("%s: %s%v moved by %v, want %v", step, c.name, c.labels, got, c.want)
		}
	}
}

// Each operational series moves by exactly what one run of the operation
// should add: pulls (and a failing one), pod and container starts, CNI
// ADD and DEL (and a failing ADD), an ExecSync timeout and an OOM kill.
func TestMetricsOperations(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := newDaemon(t, withMetrics(addr))
	const reg = "registry.k8s.io" // the host busybox and pause are named by
	// Port 1 refuses: a registry nobody serves.
	const deadReg = "127.0.0.1:1"

	s0 := scrape(t, addr)
	d.pull(t, busybox)
	s1 := scrape(t, addr)
	checkDeltas(t, "pull", s0, s1,
		seriesCheck{"cradle_image_pulls_total", []string{"registry", reg}, 1},
		seriesCheck{"cradle_image_pull_failures_total", []string{"registry", reg}, 0},
		seriesCheck{"cradle_image_pull_duration_seconds", []string{"registry", reg}, 1})
	// A fresh store fetches every blob the manifest names, config included.
	if v, want := metricValue(s1, "cradle_image_pull_bytes_total", "registry", reg), manifestBytes(t, "e2e-test-images/busybox", "1.29-2"); v != float64(want) {
		t.Errorf("cradle_image_pull_bytes_total{registry=%s} = %v after pulling busybox, whose blobs are %d bytes", reg, v, want)
	}

	if _, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: deadReg + "/missing/image:1"}}); err == nil {
		t.Fatal("pull from a registry nobody serves succeeded")
	}
	s2 := scrape(t, addr)
	checkDeltas(t, "failed pull", s1, s2,
		seriesCheck{"cradle_image_pulls_total", []string{"registry", deadReg}, 1},
		seriesCheck{"cradle_image_pull_failures_total", []string{"registry", deadReg}, 1},
		seriesCheck{"cradle_image_pull_duration_seconds", []string{"registry", deadReg}, 0},
		seriesCheck{"cradle_image_pulls_total", []string{"registry", reg}, 0})

	cfg := d.podConfig(t, "metrics-ops")
	pod := d.runPod(t, cfg)
	s3 := scrape(t, addr)
	checkDeltas(t, "run pod", s2, s3,
		seriesCheck{"cradle_pod_start_duration_seconds", nil, 1},
		seriesCheck{"cradle_cni_operation_duration_seconds", []string{"op", "ADD"}, 1},
		seriesCheck{"cradle_cni_operation_errors_total", []string{"op", "ADD"}, 0},
		seriesCheck{"cradle_cni_operation_duration_seconds", []string{"op", "DEL"}, 0})

	ctr := d.startContainer(t, pod, cfg, containerConfig("sleeper", "sleep", "1000"))
	s4 := scrape(t, addr)
	checkDeltas(t, "start container", s3, s4,
		seriesCheck{"cradle_container_start_duration_seconds", nil, 1})

	if _, err := d.execSync(t, ctr, 1, "sleep", "30"); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("ExecSync past its timeout: %v, want DeadlineExceeded", err)
	}
	if _, err := d.execSync(t, ctr, 5, "true"); err != nil {
		t.Fatalf("ExecSync: %v", err)
	}
	s5 := scrape(t, addr)
	checkDeltas(t, "exec sync", s4, s5, seriesCheck{"cradle_exec_sync_timeouts_total", nil, 1})

	hog := containerConfig("hog", "sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' x); echo survived")
	hog.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	hogID := d.startContainer(t, pod, cfg, hog)
	if st := d.waitState(t, hogID, runtimeapi.ContainerState_CONTAINER_EXITED); st.GetReason() != "OOMKilled" {
		t.Fatalf("hog exited with reason %q, want OOMKilled", st.GetReason())
	}
	s6 := scrape(t, addr)
	checkDeltas(t, "OOM kill", s5, s6,
		seriesCheck{"cradle_containers_oom_killed_total", nil, 1},
		seriesCheck{"cradle_container_start_duration_seconds", nil, 1})

	// A failing ADD is an ADD error. Two DELs follow: the one that releases
	// what the chain allocated, and the rollback's (a pod's teardown always
	// DELs, so IPAM frees the address); the plugin's own log must agree.
	delsBefore := countCalls(d.cniCalls(), "DEL ")
	d.cniControl("fail-ADD", true)
	if _, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "metrics-cni-fail")}); err == nil {
		t.Fatal("RunPodSandbox with a failing CNI ADD succeeded")
	}
	d.cniControl("fail-ADD", false)
	if n := countCalls(d.cniCalls(), "DEL ") - delsBefore; n != 2 {
		t.Errorf("the plugin saw %d DELs after the failing ADD, want 2", n)
	}
	s7 := scrape(t, addr)
	checkDeltas(t, "failed CNI ADD", s6, s7,
		seriesCheck{"cradle_cni_operation_duration_seconds", []string{"op", "ADD"}, 1},
		seriesCheck{"cradle_cni_operation_errors_total", []string{"op", "ADD"}, 1},
		seriesCheck{"cradle_cni_operation_duration_seconds", []string{"op", "DEL"}, 2},
		seriesCheck{"cradle_cni_operation_errors_total", []string{"op", "DEL"}, 0},
		seriesCheck{"cradle_pod_start_duration_seconds", nil, 0})

	d.removePod(t, pod)
	s8 := scrape(t, addr)
	checkDeltas(t, "remove pod", s7, s8,
		seriesCheck{"cradle_cni_operation_duration_seconds", []string{"op", "DEL"}, 1},
		seriesCheck{"cradle_cni_operation_errors_total", []string{"op", "DEL"}, 0})
}

// countCalls counts the cnifault log lines that start with prefix.
func countCalls(calls []string, prefix string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

// manifestBytes sums the blob sizes (config and layers) of an image
// manifest in the offline registry that the test images come from.
func manifestBytes(t *testing.T, repo, tag string) int64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+mainRegistry+"/v2/"+repo+"/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("manifest of %s:%s: %v", repo, tag, err)
	}
	defer resp.Body.Close()
	var m struct {
		Config struct{ Size int64 }
		Layers []struct{ Size int64 }
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK || len(m.Layers) == 0 {
		t.Fatalf("manifest of %s:%s: %s, %v, %d layers", repo, tag, resp.Status, err, len(m.Layers))
	}
	n := m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n
}
