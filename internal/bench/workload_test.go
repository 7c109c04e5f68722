package bench

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseTarget(t *testing.T) {
	got, err := ParseTarget("cradle=unix:///run/cradle-bench/cradle.sock")
	if err != nil || got != (Target{Name: "cradle", Endpoint: "unix:///run/cradle-bench/cradle.sock"}) {
		t.Errorf("got %+v, %v", got, err)
	}
	if got.SocketPath() != "/run/cradle-bench/cradle.sock" {
		t.Errorf("SocketPath = %q", got.SocketPath())
	}
	got, err = ParseTarget("containerd=unix:///run/c.sock,pid=42")
	if err != nil || got.PID != 42 {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, bad := range []string{
		"", "cradle", "=unix:///x", "cradle=/run/x.sock", "cradle=tcp://1.2.3.4:5",
		"cradle=unix://relative/x", "cradle=unix:///x,pid=0", "cradle=unix:///x,pid=a",
		"cradle=unix:///x,foo=1", "a/b=unix:///x",
	} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q): no error", bad)
		}
	}
}

func TestParseVariants(t *testing.T) {
	vs, err := ParseVariants("pid-pod, pid-container")
	if err != nil || len(vs) != 2 || vs[0].PID != runtimeapi.NamespaceMode_POD || vs[1].PID != runtimeapi.NamespaceMode_CONTAINER {
		t.Errorf("got %+v, %v", vs, err)
	}
	for _, bad := range []string{"", "pid-host", "pid-pod,pid-pod"} {
		if _, err := ParseVariants(bad); err == nil {
			t.Errorf("ParseVariants(%q): no error", bad)
		}
	}
}

func TestConfigs(t *testing.T) {
	w := Workload{
		Image: "registry.k8s.io/e2e-test-images/busybox:1.29-2", Command: []string{"sleep", "3600"},
		RunID: "run1", CgroupRoot: "/cradle-bench", LogRoot: "/tmp/b/logs",
	}
	for _, v := range Variants {
		pc := w.PodConfig("cradle", v, 7, "uid7")
		if got := pc.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid(); got != v.PID {
			t.Errorf("%s: pod PID mode %v", v.Name, got)
		}
		if got, want := pc.GetLinux().GetCgroupParent(), "/cradle-bench/cradle/"+v.Name+"/poduid7"; got != want {
			t.Errorf("%s: cgroup parent %q, want %q", v.Name, got, want)
		}
		if pc.GetLogDirectory() != "/tmp/b/logs/cradle/uid7" || pc.GetMetadata().GetUid() != "uid7" ||
			pc.GetLabels()[LabelRun] != "run1" || pc.GetMetadata().GetName() != "bench-"+v.Name+"-7" {
			t.Errorf("%s: pod config %v", v.Name, pc)
		}
		cc := w.ContainerConfig(v)
		if got := cc.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid(); got != v.PID {
			t.Errorf("%s: container PID mode %v", v.Name, got)
		}
		if cc.GetImage().GetImage() != w.Image || cc.GetLabels()[LabelRun] != "run1" || len(cc.GetCommand()) != 2 {
			t.Errorf("%s: container config %v", v.Name, cc)
		}
		cc.Command[0] = "changed"
		if w.Command[0] != "sleep" {
			t.Error("ContainerConfig shares the workload's command slice")
		}
	}
}

func TestIsWorkload(t *testing.T) {
	w := Workload{Command: []string{"sleep", "3600"}}
	for _, tc := range []struct {
		cmdline []string
		want    bool
	}{
		{[]string{"sleep", "3600"}, true},
		{[]string{"/bin/sleep", "3600"}, true},
		{[]string{"sleep", "10"}, false},
		{[]string{"/pause"}, false},
		{[]string{"sleep"}, false},
		{nil, false},
	} {
		if got := w.IsWorkload(Proc{Cmdline: tc.cmdline}); got != tc.want {
			t.Errorf("IsWorkload(%q) = %v", tc.cmdline, got)
		}
	}
}
