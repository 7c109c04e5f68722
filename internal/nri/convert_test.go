package nri

import (
	"slices"
	"testing"

	"github.com/containerd/nri/pkg/api"
	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestPodSandbox(t *testing.T) {
	r := sandbox.Record{
		ID: "pod1", Handler: "runc", InfraPid: 42, NetNS: "/var/run/netns/x",
		Config: &runtimeapi.PodSandboxConfig{
			Metadata:    &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"},
			Labels:      map[string]string{"app": "web"},
			Annotations: map[string]string{"a": "b"},
			Linux:       &runtimeapi.LinuxPodSandboxConfig{CgroupParent: "/kubepods"},
		},
		Network: &network.Attachment{IPs: []string{"10.0.0.2"}},
	}
	p := PodSandbox(r)
	if p.Id != "pod1" || p.Name != "web" || p.Namespace != "ns" || p.Uid != "u1" || p.RuntimeHandler != "runc" || p.Pid != 42 {
		t.Errorf("identity: %v", p)
	}
	if p.Labels["app"] != "web" || p.Annotations["a"] != "b" || !slices.Equal(p.Ips, []string{"10.0.0.2"}) {
		t.Errorf("labels, annotations or IPs: %v", p)
	}
	if p.Linux.CgroupParent != "/kubepods" || len(p.Linux.Namespaces) != 1 || p.Linux.Namespaces[0].Type != "network" {
		t.Errorf("linux: %v", p.Linux)
	}
}

func TestContainer(t *testing.T) {
	r := container.Record{
		ID: "c1", SandboxID: "pod1", State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: 3, Reason: "Error",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Labels:   map[string]string{"l": "v"},
		},
		User: &container.User{UID: 1000, GID: 100, Groups: []uint32{5}},
	}
	c := Container(r, nil)
	if c.Id != "c1" || c.PodSandboxId != "pod1" || c.Name != "app" || c.State != api.ContainerState_CONTAINER_STOPPED || c.ExitCode != 3 || c.StatusReason != "Error" {
		t.Errorf("identity or state: %v", c)
	}
	if c.User.GetUid() != 1000 || c.Labels["l"] != "v" {
		t.Errorf("user or labels: %v", c)
	}

	limit, adj := int64(1<<20), 500
	spec := &specs.Spec{
		Annotations: map[string]string{"x": "y"},
		Process: &specs.Process{
			Args: []string{"sh"}, Env: []string{"A=1"}, OOMScoreAdj: &adj,
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 2, Soft: 1}},
		},
		Mounts: []specs.Mount{{Destination: "/data", Source: "/host", Type: "bind", Options: []string{"rbind"}}},
		Linux: &specs.Linux{
			CgroupsPath: "/pod/c1",
			Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
		},
	}
	c = Container(r, spec)
	if !slices.Equal(c.Args, []string{"sh"}) || !slices.Equal(c.Env, []string{"A=1"}) || c.Annotations["x"] != "y" {
		t.Errorf("process or annotations: %v", c)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Destination != "/data" || len(c.Rlimits) != 1 || c.Rlimits[0].Soft != 1 {
		t.Errorf("mounts or rlimits: %v", c)
	}
	if c.Linux.CgroupsPath != "/pod/c1" || c.Linux.Resources.GetMemory().GetLimit().GetValue() != limit || c.Linux.OomScoreAdj.GetValue() != 500 {
		t.Errorf("linux: %v", c.Linux)
	}
}

func TestAdjust(t *testing.T) {
	spec := &specs.Spec{
		Process: &specs.Process{Args: []string{"sleep", "1"}, Env: []string{"KEEP=1", "DROP=1"}},
		Linux:   &specs.Linux{Resources: &specs.LinuxResources{}},
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("ADDED", "yes")
	adj.RemoveEnv("DROP")
	adj.AddAnnotation("nri", "was-here")
	adj.AddMount(&api.Mount{Destination: "/extra", Source: "/tmp", Type: "bind", Options: []string{"rbind", "ro"}})
	adj.SetLinuxMemoryLimit(64 << 20)
	adj.SetLinuxCPUShares(512)
	adj.SetLinuxPidLimits(100)
	adj.AddRlimit("RLIMIT_NOFILE", 2048, 1024)
	if err := Adjust(spec, adj); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "ADDED=yes") || slices.Contains(spec.Process.Env, "DROP=1") || !slices.Contains(spec.Process.Env, "KEEP=1") {
		t.Errorf("env: %v", spec.Process.Env)
	}
	if spec.Annotations["nri"] != "was-here" {
		t.Errorf("annotations: %v", spec.Annotations)
	}
	if len(spec.Mounts) != 1 || spec.Mounts[0].Destination != "/extra" {
		t.Errorf("mounts: %v", spec.Mounts)
	}
	res := spec.Linux.Resources
	if res.Memory == nil || *res.Memory.Limit != 64<<20 || res.CPU == nil || *res.CPU.Shares != 512 || res.Pids == nil || res.Pids.Limit == nil || *res.Pids.Limit != 100 {
		t.Errorf("resources: %+v", res)
	}
	if len(spec.Process.Rlimits) != 1 || spec.Process.Rlimits[0].Hard != 2048 || spec.Process.Rlimits[0].Soft != 1024 {
		t.Errorf("rlimits: %v", spec.Process.Rlimits)
	}
	if err := Adjust(spec, nil); err != nil {
		t.Errorf("nil adjustment: %v", err)
	}
}

// A disabled NRI is a nil *NRI whose hooks do nothing.
func TestDisabled(t *testing.T) {
	n, err := New(config.NRIConfig{}, nil)
	if err != nil || n.Enabled() {
		t.Fatalf("New(disabled) = %v, %v", n, err)
	}
	n.BlockSync()()
	if err := n.RunPodSandbox(t.Context(), &api.PodSandbox{}); err != nil {
		t.Error(err)
	}
	spec := &specs.Spec{}
	if err := n.CreateContainer(t.Context(), nil, nil, spec); err != nil {
		t.Error(err)
	}
	n.Stop()
}
