package ocispec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func apparmorType(typ runtimeapi.SecurityProfile_ProfileType, ref string) func(*ContainerInput) {
	return func(in *ContainerInput) {
		secCtx(in).Apparmor = &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
}

func apparmorName(p string) func(*ContainerInput) {
	return func(in *ContainerInput) { secCtx(in).ApparmorProfile = p }
}

func withAppArmor(p string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.ApparmorProfile = p }
}

func TestAppArmor(t *testing.T) {
	on := func(h *testHost) { h.apparmor = true }
	runSpecCases(t, []specCase{
		{name: "off: nothing asked"},
		{name: "off: unconfined", in: apparmorType(runtimeapi.SecurityProfile_Unconfined, "")},
		{name: "off: deprecated unconfined", in: apparmorName("unconfined")},
		{name: "on: nothing asked is the default profile", host: on, want: withAppArmor(DefaultAppArmorProfile)},
		{name: "on: runtime default", host: on, in: apparmorType(runtimeapi.SecurityProfile_RuntimeDefault, ""), want: withAppArmor(DefaultAppArmorProfile)},
		{name: "on: localhost", host: on, in: apparmorType(runtimeapi.SecurityProfile_Localhost, "my-profile"), want: withAppArmor("my-profile")},
		{name: "on: unconfined", host: on, in: apparmorType(runtimeapi.SecurityProfile_Unconfined, "")},
		{name: "on: deprecated runtime/default", host: on, in: apparmorName("runtime/default"), want: withAppArmor(DefaultAppArmorProfile)},
		{name: "on: deprecated localhost/NAME", host: on, in: apparmorName("localhost/my-profile"), want: withAppArmor("my-profile")},
		{name: "on: deprecated unconfined", host: on, in: apparmorName("unconfined")},
		{
			name: "on: the field wins over the deprecated name",
			host: on,
			in: func(in *ContainerInput) {
				apparmorType(runtimeapi.SecurityProfile_Localhost, "a")(in)
				apparmorName("localhost/b")(in)
			},
			want: withAppArmor("a"),
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "off: runtime default asked",
			in:    apparmorType(runtimeapi.SecurityProfile_RuntimeDefault, ""),
			field: "linux.security_context.apparmor", msg: "AppArmor profile runtime/default was asked for, but AppArmor is not enabled on this host",
		},
		{
			name:  "off: localhost asked",
			in:    apparmorType(runtimeapi.SecurityProfile_Localhost, "p"),
			field: "linux.security_context.apparmor", msg: "localhost/p was asked for, but AppArmor is not enabled",
		},
		{
			name:  "off: deprecated localhost",
			in:    apparmorName("localhost/p"),
			field: "linux.security_context.apparmor_profile", msg: "not enabled",
		},
		{
			name: "on: localhost without a name", host: on,
			in:    apparmorType(runtimeapi.SecurityProfile_Localhost, ""),
			field: "linux.security_context.apparmor", msg: "needs a name",
		},
		{
			name: "on: unknown deprecated name", host: on,
			in:    apparmorName("docker-default"),
			field: "linux.security_context.apparmor_profile", msg: `unknown AppArmor profile "docker-default"`,
		},
	})
}

// fakeAppArmorLoader stands in for the kernel's profile list and
// apparmor_parser; it records the profiles it was asked to load.
type fakeAppArmorLoader struct {
	loaded     map[string]bool
	installs   []string
	installErr error
	listErr    error
}

func useAppArmorLoader(t *testing.T, f *fakeAppArmorLoader) {
	t.Helper()
	l, i := apparmorLoaded, apparmorInstall
	t.Cleanup(func() { apparmorLoaded, apparmorInstall = l, i })
	apparmorLoaded = func(name string) (bool, error) { return f.loaded[name], f.listErr }
	apparmorInstall = func(name string) error {
		f.installs = append(f.installs, name)
		if f.installErr == nil {
			f.loaded[name] = true
		}
		return f.installErr
	}
}

// PrepareHost loads the default profile only for a spec that uses it, and
// only once the kernel has it.
func TestAppArmorLoad(t *testing.T) {
	prepare := func(t *testing.T, host func(*testHost), edit func(*ContainerInput)) (*specs.Spec, error) {
		t.Helper()
		in := caseInput(t, host, edit)
		s, err := ContainerSpec(in)
		if err != nil {
			t.Fatalf("ContainerSpec: %v", err)
		}
		return s, PrepareHost(in, s)
	}
	on := func(h *testHost) { h.apparmor = true }
	t.Run("off: nothing loaded", func(t *testing.T) {
		f := &fakeAppArmorLoader{loaded: map[string]bool{}}
		useAppArmorLoader(t, f)
		s, err := prepare(t, nil, nil)
		if err != nil || s.Process.ApparmorProfile != "" || f.installs != nil {
			t.Errorf("profile %q, err %v, loads %q", s.Process.ApparmorProfile, err, f.installs)
		}
	})
	t.Run("on: a localhost profile is the operator's to load", func(t *testing.T) {
		f := &fakeAppArmorLoader{loaded: map[string]bool{}}
		useAppArmorLoader(t, f)
		s, err := prepare(t, on, apparmorType(runtimeapi.SecurityProfile_Localhost, "my-profile"))
		if err != nil || s.Process.ApparmorProfile != "my-profile" || f.installs != nil {
			t.Errorf("profile %q, err %v, loads %q", s.Process.ApparmorProfile, err, f.installs)
		}
	})
	t.Run("on: the default is loaded once", func(t *testing.T) {
		f := &fakeAppArmorLoader{loaded: map[string]bool{}}
		useAppArmorLoader(t, f)
		for range 2 {
			s, err := prepare(t, on, nil)
			if err != nil || s.Process.ApparmorProfile != DefaultAppArmorProfile {
				t.Fatalf("profile %q, err %v", s.Process.ApparmorProfile, err)
			}
		}
		if want := []string{DefaultAppArmorProfile}; !reflect.DeepEqual(f.installs, want) {
			t.Errorf("loads %q, want %q", f.installs, want)
		}
	})
	t.Run("on: an unreadable profile list means loading", func(t *testing.T) {
		f := &fakeAppArmorLoader{loaded: map[string]bool{}, listErr: errors.New("permission denied")}
		useAppArmorLoader(t, f)
		if _, err := prepare(t, on, nil); err != nil || len(f.installs) != 1 {
			t.Errorf("err %v, loads %q", err, f.installs)
		}
	})
	t.Run("on: a failed load is an error", func(t *testing.T) {
		boom := errors.New("apparmor_parser: not found")
		f := &fakeAppArmorLoader{loaded: map[string]bool{}, installErr: boom}
		useAppArmorLoader(t, f)
		_, err := prepare(t, on, nil)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), DefaultAppArmorProfile) {
			t.Errorf("err %v, want it to wrap %v and name the profile", err, boom)
		}
	})
}

func TestSELinux(t *testing.T) {
	on := func(h *testHost) { h.selinux = true }
	labels := func(p, m string) func(*specs.Spec) {
		return func(s *specs.Spec) { s.Process.SelinuxLabel, s.Linux.MountLabel = p, m }
	}
	opts := func(o *runtimeapi.SELinuxOption) func(*ContainerInput) {
		return func(in *ContainerInput) { secCtx(in).SelinuxOptions = o }
	}
	runSpecCases(t, []specCase{
		{name: "off: options ignored", in: opts(&runtimeapi.SELinuxOption{User: "u", Type: "t"})},
		{
			name: "on: the default labels",
			host: on,
			want: labels("system_u:system_r:container_t:s0:c1,c2", "system_u:object_r:container_file_t:s0:c1,c2"),
		},
		{
			name: "on: from selinux_options",
			host: on,
			in:   opts(&runtimeapi.SELinuxOption{User: "user_u", Role: "role_r", Type: "spc_t", Level: "s0:c5,c6"}),
			want: labels("user_u:role_r:spc_t:s0:c5,c6", "user_u:object_r:container_file_t:s0:c5,c6"),
		},
		{
			name: "on: some options",
			host: on,
			in:   opts(&runtimeapi.SELinuxOption{Level: "s0:c7,c8"}),
			want: labels("system_u:system_r:container_t:s0:c7,c8", "system_u:object_r:container_file_t:s0:c7,c8"),
		},
		{
			name: "on: the pod's label when the container has no options",
			host: on,
			in:   func(in *ContainerInput) { in.Sandbox.SELinuxLabel = "system_u:system_r:container_t:s0:c3,c4" },
			want: labels("system_u:system_r:container_t:s0:c3,c4", "system_u:object_r:container_file_t:s0:c3,c4"),
		},
		{
			name: "on: the container's options override parts of the pod's label, and it keeps the pod's level",
			host: on,
			in: func(in *ContainerInput) {
				in.Sandbox.SELinuxLabel = "system_u:system_r:container_t:s0:c3,c4"
				opts(&runtimeapi.SELinuxOption{Type: "other_t"})(in)
			},
			want: labels("system_u:system_r:other_t:s0:c3,c4", "system_u:object_r:container_file_t:s0:c3,c4"),
		},
	})
}

func TestPodSELinuxLabel(t *testing.T) {
	useHost(t, testHost{})
	if l, err := PodSELinuxLabel(&runtimeapi.SELinuxOption{Level: "s0:c1"}); l != "" || err != nil {
		t.Errorf("SELinux off: %q, %v", l, err)
	}
	useHost(t, testHost{selinux: true})
	if l, err := PodSELinuxLabel(&runtimeapi.SELinuxOption{Level: "s0:c9"}); l != "system_u:system_r:container_t:s0:c9" || err != nil {
		t.Errorf("SELinux on: %q, %v", l, err)
	}
}
