package validate_test

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/validate"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The fuzz targets feed encoded configs through validation and, where it
// accepts them, through spec generation, as CreateContainer and
// RunPodSandbox do. What they assert: nothing panics; every refusal names
// a field; and an accepted config gives a spec whose paths stay where
// they belong. `make fuzz` runs each for FUZZTIME.

func rootfs(f *testing.F) string {
	dir := f.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		f.Fatal(err)
	}
	for name, body := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	return dir
}

const podParent = "/kubepods/pod1"

func input(root string, cfg *runtimeapi.ContainerConfig, sb ocispec.Sandbox) *ocispec.ContainerInput {
	return &ocispec.ContainerInput{
		ID: "c1", Config: cfg, Rootfs: root, ImageName: "busybox",
		Image:   imgspecv1.ImageConfig{Entrypoint: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, WorkingDir: "/"},
		Sandbox: sb,
	}
}

func FuzzContainerSpec(f *testing.F) {
	for _, s := range seeds(ContainerCases, goodContainer) {
		f.Add(s)
	}
	root := rootfs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &runtimeapi.ContainerConfig{}
		if proto.Unmarshal(data, cfg) != nil {
			return
		}
		if err := validate.Container(cfg); err != nil {
			namesField(t, err, "config")
			return
		}
		sb := ocispec.Sandbox{ID: "sb1", Name: "pod", Namespace: "ns", UID: "u", Hostname: "pod", CgroupParent: podParent}
		ociSpec, err := ocispec.ContainerSpec(input(root, cfg, sb))
		if err != nil {
			namesField(t, err, "")
			return
		}
		specStaysInside(t, ociSpec, podParent)
	})
}

func FuzzPodSandboxSpec(f *testing.F) {
	for _, s := range seeds(PodCases, goodPod) {
		f.Add(s)
	}
	root := rootfs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &runtimeapi.PodSandboxConfig{}
		if proto.Unmarshal(data, cfg) != nil {
			return
		}
		if err := validate.PodSandbox(cfg); err != nil {
			namesField(t, err, "config")
			return
		}
		// The pod's files, as RunPodSandbox writes them (without the shm
		// mount): one line of hostname, and resolv.conf lines only of the
		// kinds the config asked for.
		dir := t.TempDir()
		files, err := sandbox.WriteFiles(dir, cfg.GetHostname(), cfg.GetDnsConfig(), true)
		if err != nil {
			t.Fatalf("WriteFiles: %v", err)
		}
		for _, p := range []string{files.Hostname, files.Hosts, files.Resolv} {
			if filepath.Dir(p) != dir {
				t.Errorf("pod file %s is outside %s", p, dir)
			}
		}
		if b, _ := os.ReadFile(files.Hostname); strings.Count(string(b), "\n") != 1 {
			t.Errorf("hostname file %q is not one line", b)
		}
		if d := cfg.GetDnsConfig(); d != nil && len(d.GetServers())+len(d.GetSearches())+len(d.GetOptions()) > 0 {
			b, _ := os.ReadFile(files.Resolv)
			want := len(d.GetServers())
			if len(d.GetSearches()) > 0 {
				want++
			}
			if len(d.GetOptions()) > 0 {
				want++
			}
			if got := strings.Count(string(b), "\n"); got != want {
				t.Errorf("resolv.conf has %d lines, want %d:\n%s", got, want, b)
			}
		}
		// The pod's infra container, from what the pod config gives it.
		parent := cfg.GetLinux().GetCgroupParent()
		sb := ocispec.Sandbox{
			ID: "sb1", Name: cfg.GetMetadata().GetName(), Namespace: cfg.GetMetadata().GetNamespace(),
			UID: cfg.GetMetadata().GetUid(), Hostname: cfg.GetHostname(), CgroupParent: parent,
			Annotations: cfg.GetAnnotations(),
		}
		infra := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "POD"},
			Image:    &runtimeapi.ImageSpec{Image: "pause"},
			Linux:    &runtimeapi.LinuxContainerConfig{Resources: cfg.GetLinux().GetResources()},
		}
		ociSpec, err := ocispec.ContainerSpec(input(root, infra, sb))
		if err != nil {
			namesField(t, err, "")
			return
		}
		if parent == "" {
			parent = "/cradle"
		}
		specStaysInside(t, ociSpec, path.Join("/", parent))
	})
}

// namesField: a refusal is a field error (or a host limit), naming a field
// under prefix.
func namesField(t *testing.T, err error, prefix string) {
	t.Helper()
	var ve *validate.Error // ocispec.FieldError too
	var he *ocispec.HostError
	switch {
	case errors.As(err, &ve):
		if !strings.HasPrefix(ve.Field, prefix) {
			t.Errorf("refusal %q names %q, not a field under %q", err, ve.Field, prefix)
		}
	case errors.As(err, &he):
	default:
		t.Errorf("refusal %v (%T) names no field", err, err)
	}
}

// specStaysInside checks what an accepted config may never produce.
func specStaysInside(t *testing.T, ociSpec *specs.Spec, cgroupParent string) {
	t.Helper()
	for _, m := range ociSpec.Mounts {
		if !path.IsAbs(m.Destination) || strings.Contains("/"+m.Destination+"/", "/../") {
			t.Errorf("mount destination %q is not absolute and clean", m.Destination)
		}
	}
	if p := ociSpec.Process; p != nil {
		if !path.IsAbs(p.Cwd) {
			t.Errorf("cwd %q is not absolute", p.Cwd)
		}
		for _, s := range append(append([]string{}, p.Args...), p.Env...) {
			if strings.IndexByte(s, 0) >= 0 {
				t.Errorf("argv or env %q has a NUL", s)
			}
		}
	}
	if strings.ContainsAny(ociSpec.Hostname, "\n\x00 /") {
		t.Errorf("hostname %q", ociSpec.Hostname)
	}
	// A ".." segment, not a name with two dots in it ("a..b", which the
	// fuzzer found), would climb.
	if cg := ociSpec.Linux.CgroupsPath; !strings.HasPrefix(cg, strings.TrimSuffix(cgroupParent, "/")+"/") || strings.Contains(cg+"/", "/../") {
		t.Errorf("cgroups path %q is not under %q", cg, cgroupParent)
	}
}
