package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
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
