package ocispec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testSeccompProfile = `{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 1,
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [
    {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
  ]
}`

// wantLocalProfile is testSeccompProfile as the spec carries it.
func wantLocalProfile(s *specs.Spec) {
	one := uint(1)
	s.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &one,
		Architectures:   []specs.Arch{specs.ArchX86_64},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "exit_group"}, Action: specs.ActAllow},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
		},
	}
}

// wantDefaultProfile is the moby default profile for the spec's
// capabilities: it allows more calls when they allow more.
func wantDefaultProfile(t *testing.T) func(*specs.Spec) {
	return func(s *specs.Spec) {
		p, err := seccomp.GetDefaultProfile(s)
		if err != nil {
			t.Fatal(err)
		}
		s.Linux.Seccomp = p
	}
}

func seccompType(typ runtimeapi.SecurityProfile_ProfileType, ref string) func(*ContainerInput) {
	return func(in *ContainerInput) {
		secCtx(in).Seccomp = &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
}

func seccompPath(p string) func(*ContainerInput) {
	return func(in *ContainerInput) { secCtx(in).SeccompProfilePath = p }
}

func annotate(anns map[string]string, pod map[string]string) func(*ContainerInput) {
	return func(in *ContainerInput) { in.Config.Annotations, in.Sandbox.Annotations = anns, pod }
}

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(prof, []byte(testSeccompProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.json")
	const ctrKey = AnnSeccompContainerPrefix + "web"
	// keepAnns adds the input's annotations to the expected spec.
	keepAnns := func(anns map[string]string, then func(*specs.Spec)) func(*specs.Spec) {
		return func(s *specs.Spec) {
			for k, v := range anns {
				s.Annotations[k] = v
			}
			if then != nil {
				then(s)
			}
		}
	}
	runSpecCases(t, []specCase{
		{name: "unconfined", in: seccompType(runtimeapi.SecurityProfile_Unconfined, "")},
		{name: "runtime default", in: seccompType(runtimeapi.SecurityProfile_RuntimeDefault, ""), want: wantDefaultProfile(t)},
		{
			name: "runtime default follows the capabilities",
			in: func(in *ContainerInput) {
				seccompType(runtimeapi.SecurityProfile_RuntimeDefault, "")(in)
				capsCfg([]string{"SYS_ADMIN", "SYS_PTRACE"}, nil, nil)(in)
			},
			want: func(s *specs.Spec) {
				c := append(goldenCaps[:11:11], "CAP_SYS_PTRACE", "CAP_SYS_ADMIN")
				setCaps(s, append(c, goldenCaps[11:]...)...)
				wantDefaultProfile(t)(s)
			},
		},
		{name: "localhost", in: seccompType(runtimeapi.SecurityProfile_Localhost, prof), want: wantLocalProfile},
		{name: "deprecated runtime/default", in: seccompPath("runtime/default"), want: wantDefaultProfile(t)},
		{name: "deprecated docker/default", in: seccompPath("docker/default"), want: wantDefaultProfile(t)},
		{name: "deprecated unconfined", in: seccompPath("unconfined")},
		{name: "deprecated localhost/<path>", in: seccompPath("localhost/" + prof), want: wantLocalProfile},
		{
			name: "the field wins over the path and the annotations",
			in: func(in *ContainerInput) {
				seccompType(runtimeapi.SecurityProfile_Localhost, prof)(in)
				seccompPath("runtime/default")(in)
				annotate(map[string]string{ctrKey: "runtime/default"}, map[string]string{AnnSeccompPod: "runtime/default"})(in)
			},
			want: keepAnns(map[string]string{ctrKey: "runtime/default"}, wantLocalProfile),
		},
		{
			name: "the path wins over the annotations",
			in: func(in *ContainerInput) {
				seccompPath("localhost/" + prof)(in)
				annotate(map[string]string{ctrKey: "runtime/default"}, nil)(in)
			},
			want: keepAnns(map[string]string{ctrKey: "runtime/default"}, wantLocalProfile),
		},
		{
			name: "the container's annotation on the pod",
			in:   annotate(nil, map[string]string{ctrKey: "localhost/" + prof, AnnSeccompPod: "runtime/default"}),
			want: wantLocalProfile,
		},
		{
			name: "the container's annotation wins over the pod's",
			in:   annotate(map[string]string{AnnSeccompPod: "runtime/default"}, map[string]string{ctrKey: "unconfined"}),
			want: keepAnns(map[string]string{AnnSeccompPod: "runtime/default"}, nil),
		},
		{
			name: "the pod's annotation",
			in:   annotate(nil, map[string]string{AnnSeccompPod: "docker/default", AnnSeccompContainerPrefix + "other": "unconfined"}),
			want: wantDefaultProfile(t),
		},
		{
			name: "the pod annotation on the container",
			in:   annotate(map[string]string{AnnSeccompPod: "localhost/" + prof}, nil),
			want: keepAnns(map[string]string{AnnSeccompPod: "localhost/" + prof}, wantLocalProfile),
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "missing localhost profile",
			in:    seccompType(runtimeapi.SecurityProfile_Localhost, missing),
			field: "linux.security_context.seccomp.localhost_ref", msg: "no such file or directory",
		},
		{
			name:  "relative localhost profile",
			in:    seccompType(runtimeapi.SecurityProfile_Localhost, "profile.json"),
			field: "linux.security_context.seccomp.localhost_ref", msg: "not an absolute path",
		},
		{
			name:  "invalid localhost profile",
			in:    seccompType(runtimeapi.SecurityProfile_Localhost, bad),
			field: "linux.security_context.seccomp.localhost_ref", msg: bad,
		},
		{
			name:  "unknown profile type",
			in:    seccompType(7, ""),
			field: "linux.security_context.seccomp.profile_type", msg: "unknown",
		},
		{
			name:  "missing profile by the deprecated path",
			in:    seccompPath("localhost/" + missing),
			field: "linux.security_context.seccomp_profile_path", msg: "no such file or directory",
		},
		{
			name:  "unknown deprecated path",
			in:    seccompPath("chrome/default"),
			field: "linux.security_context.seccomp_profile_path", msg: `unknown seccomp profile "chrome/default"`,
		},
		{
			name:  "missing profile by the container's annotation",
			in:    annotate(map[string]string{ctrKey: "localhost/" + missing}, nil),
			field: "annotations[" + ctrKey + "]", msg: "no such file or directory",
		},
		{
			name:  "missing profile by the pod's annotation",
			in:    annotate(nil, map[string]string{AnnSeccompPod: "localhost/" + missing}),
			field: "pod annotations[" + AnnSeccompPod + "]", msg: "no such file or directory",
		},
	})
}
