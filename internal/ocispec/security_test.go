package ocispec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// privileged is what privileged changes in the golden spec.
func privileged(s *specs.Spec) {
	setCaps(s, testBounding...)
	s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	s.Mounts[4].Options = []string{"nosuid", "noexec", "nodev", "rw"}
	s.Mounts[5].Options = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
}

func capsCfg(add, drop, ambient []string) func(*ContainerInput) {
	return func(in *ContainerInput) {
		secCtx(in).Capabilities = &runtimeapi.Capability{AddCapabilities: add, DropCapabilities: drop, AddAmbientCapabilities: ambient}
	}
}

func without(list []string, drop ...string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
}

func TestSecurity(t *testing.T) {
	runSpecCases(t, []specCase{
		{
			name: "privileged: the bounding set, no masks, rw /sys, unconfined",
			host: func(h *testHost) { h.apparmor, h.selinux = true, true },
			in: func(in *ContainerInput) {
				in.PodPrivileged = true
				sc := secCtx(in)
				sc.Privileged = true
				sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
				sc.MaskedPaths = []string{"/proc/x"}
				sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
				sc.Apparmor = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
				sc.SelinuxOptions = &runtimeapi.SELinuxOption{Type: "x_t"}
			},
			want: privileged,
		},
		{
			name: "configured default capabilities",
			in:   func(in *ContainerInput) { in.Defaults.Capabilities = []string{"kill", "CAP_CHOWN"} },
			want: func(s *specs.Spec) { setCaps(s, "CAP_CHOWN", "CAP_KILL") },
		},
		{
			name: "a default outside the bounding set is left out",
			in:   func(in *ContainerInput) { in.Defaults.Capabilities = []string{"CAP_CHOWN", "CAP_CHECKPOINT_RESTORE"} },
			want: func(s *specs.Spec) { setCaps(s, "CAP_CHOWN") },
		},
		{
			name: "add and drop, with or without CAP_",
			in:   capsCfg([]string{"NET_ADMIN", "cap_sys_time"}, []string{"MKNOD", "CAP_NET_RAW"}, nil),
			want: func(s *specs.Spec) {
				c := without(goldenCaps, "CAP_MKNOD", "CAP_NET_RAW")
				c = append(c[:9:9], append([]string{"CAP_NET_ADMIN"}, c[9:]...)...)
				c = append(c[:11:11], append([]string{"CAP_SYS_TIME"}, c[11:]...)...)
				setCaps(s, c...)
			},
		},
		{
			name: "add ALL is the bounding set, of 40",
			in:   capsCfg([]string{"ALL"}, nil, nil),
			want: func(s *specs.Spec) { setCaps(s, testBounding...) },
		},
		{
			name: "add ALL then drop some",
			in:   capsCfg([]string{"ALL"}, []string{"SYS_ADMIN", "CHOWN"}, nil),
			want: func(s *specs.Spec) { setCaps(s, without(testBounding, "CAP_SYS_ADMIN", "CAP_CHOWN")...) },
		},
		{
			name: "drop ALL",
			in:   capsCfg(nil, []string{"all"}, nil),
			want: func(s *specs.Spec) { setCaps(s) },
		},
		{
			name: "drop ALL then add some",
			in:   capsCfg([]string{"NET_BIND_SERVICE", "KILL"}, []string{"ALL"}, nil),
			want: func(s *specs.Spec) { setCaps(s, "CAP_KILL", "CAP_NET_BIND_SERVICE") },
		},
		{
			name: "add ALL and drop ALL",
			in:   capsCfg([]string{"ALL"}, []string{"ALL"}, nil),
			want: func(s *specs.Spec) { setCaps(s) },
		},
		{
			name: "ambient capabilities are also inheritable and in the set",
			in:   capsCfg(nil, []string{"ALL"}, []string{"NET_ADMIN", "CAP_NET_BIND_SERVICE"}),
			want: func(s *specs.Spec) {
				setCaps(s, "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN")
				s.Process.Capabilities.Inheritable = []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}
				s.Process.Capabilities.Ambient = []string{"CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"}
			},
		},
		{
			name: "no_new_privs and a read-only rootfs",
			in:   func(in *ContainerInput) { secCtx(in).NoNewPrivs, secCtx(in).ReadonlyRootfs = true, true },
			want: func(s *specs.Spec) {
				s.Process.NoNewPrivileges = true
				s.Root.Readonly = true
				for i := 6; i < 9; i++ {
					s.Mounts[i].Options = []string{"rbind", "rprivate", "ro"}
				}
			},
		},
		{
			name: "masked and read-only paths from the config",
			in: func(in *ContainerInput) {
				secCtx(in).MaskedPaths = []string{"/proc/x", "/sys/y"}
				secCtx(in).ReadonlyPaths = []string{}
			},
			want: func(s *specs.Spec) {
				s.Linux.MaskedPaths = []string{"/proc/x", "/sys/y"}
				s.Linux.ReadonlyPaths = nil
			},
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "privileged in an unprivileged pod",
			in:    func(in *ContainerInput) { secCtx(in).Privileged = true },
			field: "linux.security_context.privileged", msg: "privileged pod",
		},
		{
			name:  "unknown capability added",
			in:    capsCfg([]string{"CHOWN", "CAP_MADE_UP"}, nil, nil),
			field: "linux.security_context.capabilities.add_capabilities[1]", msg: `unknown capability "CAP_MADE_UP"`,
		},
		{
			name:  "unknown capability dropped",
			in:    capsCfg(nil, []string{"MADE_UP"}, nil),
			field: "linux.security_context.capabilities.drop_capabilities[0]", msg: `unknown capability "MADE_UP"`,
		},
		{
			name:  "a capability outside the bounding set",
			in:    capsCfg([]string{"CHECKPOINT_RESTORE"}, nil, nil),
			field: "linux.security_context.capabilities.add_capabilities[0]", msg: "CAP_CHECKPOINT_RESTORE is not in the runtime's bounding set",
		},
		{
			name:  "unknown ambient capability",
			in:    capsCfg(nil, nil, []string{"NOPE"}),
			field: "linux.security_context.capabilities.add_ambient_capabilities[0]", msg: "unknown capability",
		},
		{
			name:  "ambient ALL",
			in:    capsCfg(nil, nil, []string{"ALL"}),
			field: "linux.security_context.capabilities.add_ambient_capabilities", msg: "ALL",
		},
	})
}

func TestBoundingSetDefault(t *testing.T) {
	useHost(t, defaultHost())
	in := baseInput(t)
	in.Defaults.Bounding = nil
	capsCfg([]string{"ALL"}, nil, nil)(in)
	s, err := ContainerSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Process.Capabilities.Bounding, BoundingSet(); !slices.Equal(got, want) {
		t.Errorf("with no Defaults.Bounding, ALL = %v, want this process's %v", got, want)
	}
}
