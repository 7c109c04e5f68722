package agent

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestGuestSpec(t *testing.T) {
	s := &specs.Spec{
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{ApparmorProfile: "cradle-default"},
		Hooks:   &specs.Hooks{},
		Linux: &specs.Linux{
			CgroupsPath: "/kubepods/pod1/c1",
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.NetworkNamespace, Path: "/var/run/netns/cradle-x"},
				{Type: specs.IPCNamespace, Path: "/proc/42/ns/ipc"},
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
			},
			UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
			Sysctl:      map[string]string{"kernel.shm_rmid_forced": "1", "net.a/../../b": "1"},
		},
	}
	guestSpec(s, "c1", "/run/cradle/share/c1/rootfs")
	if s.Root.Path != "/run/cradle/share/c1/rootfs" || s.Linux.CgroupsPath != "/cradle/c1" || s.Hooks != nil ||
		s.Process.ApparmorProfile != "" || s.Linux.UIDMappings != nil {
		t.Errorf("spec: %+v %+v", s.Root, s.Linux)
	}
	want := []specs.LinuxNamespace{{Type: specs.IPCNamespace}, {Type: specs.PIDNamespace}, {Type: specs.MountNamespace}}
	if len(s.Linux.Namespaces) != len(want) {
		t.Fatalf("namespaces %+v, want %+v", s.Linux.Namespaces, want)
	}
	for i := range want {
		if s.Linux.Namespaces[i] != want[i] {
			t.Errorf("namespace %d: %+v, want %+v", i, s.Linux.Namespaces[i], want[i])
		}
	}
	if s.Linux.Sysctl["kernel.shm_rmid_forced"] != "1" || s.Linux.Sysctl["net.a/../../b"] != "1" {
		t.Errorf("non-net or malformed sysctls must stay for runc to judge: %v", s.Linux.Sysctl)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "x\x00"} {
		if validID("id", id) == nil {
			t.Errorf("%q accepted", id)
		}
	}
	if err := validID("id", "abc-1"); err != nil {
		t.Error(err)
	}
}
