package ocispec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The tests build an input (baseInput) and the whole spec it must give
// (golden), then each case applies its deltas to both and compares the
// whole specs.

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
nohome:x:1002:1002:::/bin/sh
`
	testGroup = `root:x:0:
daemon:x:1:
wheel:x:10:root
video:x:44:alice
staff:x:50:alice,bob
alice:x:1000:
bob:x:1001:
`
)

// testBounding is a bounding set of 40 capabilities, as on a kernel that
// lacks CAP_CHECKPOINT_RESTORE.
var testBounding = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
}

// goldenCaps is DefaultCapabilities in the bounding set's order.
var goldenCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT",
	"CAP_MKNOD", "CAP_AUDIT_WRITE", "CAP_SETFCAP",
}

func writeRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func baseInput(t *testing.T) *ContainerInput {
	return &ContainerInput{
		ID: "c1",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "web"},
			Image:    &runtimeapi.ImageSpec{Image: "busybox"},
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				},
			},
		},
		Image: imgspecv1.ImageConfig{
			Entrypoint: []string{"/entry"}, Cmd: []string{"serve"},
			Env: []string{"PATH=/img/bin", "A=1"}, WorkingDir: "/srv",
		},
		ImageName: "docker.io/library/busybox:latest",
		Rootfs:    writeRootfs(t),
		Sandbox: Sandbox{
			ID: "sb1", Name: "pod", Namespace: "ns", UID: "uid1", Hostname: "podhost",
			NetNS: "/run/netns/n1", IPCNS: "/run/cradle/ns/ipc-1", UTSNS: "/run/cradle/ns/uts-1",
			HostsFile: "/pod/hosts", ResolvFile: "/pod/resolv.conf", HostnameFile: "/pod/hostname", ShmPath: "/pod/shm",
			CgroupParent: "/kubepods/pod1",
		},
		Defaults: Defaults{Bounding: testBounding},
	}
}

func i64(v int64) *int64 { return &v }

// golden is the whole spec baseInput must give.
func golden(in *ContainerInput) *specs.Spec {
	bind := func(dst, src string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	zero := 0
	dev := func(major, minor int64) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(major), Minor: i64(minor), Access: "rwm"}
	}
	caps := append([]string(nil), goldenCaps...)
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}},
			Args: []string{"/entry", "serve"},
			Env:  []string{"PATH=/img/bin", "HOSTNAME=podhost", "A=1", "HOME=/root"},
			Cwd:  "/srv",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			OOMScoreAdj: &zero,
		},
		Root:     &specs.Root{Path: in.Rootfs},
		Hostname: "podhost",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			bind("/etc/hosts", "/pod/hosts", "rbind", "rprivate", "rw"),
			bind("/etc/resolv.conf", "/pod/resolv.conf", "rbind", "rprivate", "rw"),
			bind("/etc/hostname", "/pod/hostname", "rbind", "rprivate", "rw"),
			bind("/dev/shm", "/pod/shm", "rbind", "rprivate", "nosuid", "noexec", "nodev", "rw"),
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				dev(1, 3), dev(1, 5), dev(1, 7), dev(1, 8), dev(1, 9), dev(5, 0), dev(5, 1), dev(5, 2),
				{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
			}},
			CgroupsPath: "/kubepods/pod1/cradle-c1",
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.MountNamespace},
				{Type: specs.NetworkNamespace, Path: "/run/netns/n1"},
				{Type: specs.IPCNamespace, Path: "/run/cradle/ns/ipc-1"},
				{Type: specs.UTSNamespace, Path: "/run/cradle/ns/uts-1"},
				{Type: specs.PIDNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/firmware", "/sys/devices/virtual/powercap", "/proc/interrupts",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
		Annotations: map[string]string{
			AnnContainerType: "container", AnnCrioType: "container",
			AnnSandboxID: "sb1", AnnCrioSandboxID: "sb1",
			AnnSandboxName: "pod", AnnCrioSandboxName: "pod",
			AnnSandboxNamespace: "ns", AnnCrioNamespace: "ns", AnnSandboxUID: "uid1",
			AnnContainerName: "web", AnnCrioName: "web",
			AnnImageName: "docker.io/library/busybox:latest", AnnCrioImageName: "docker.io/library/busybox:latest",
		},
	}
}

// testHost is the host the spec builder sees in a test.
type testHost struct {
	mounts                           []*mountinfo.Info
	apparmor, selinux, swap, cgroup2 bool
	devices                          []specs.LinuxDevice
	controllers                      map[string]bool
}

func defaultHost() testHost {
	return testHost{mounts: []*mountinfo.Info{{Mountpoint: "/"}}, swap: true,
		controllers: map[string]bool{"cpu": true, "cpuset": true, "memory": true, "pids": true, "hugetlb": true}}
}

// fakeLabels stands for label.InitLabels on an SELinux host.
func fakeLabels(opts []string) (string, string, error) {
	c := map[string]string{"user": "system_u", "role": "system_r", "type": "container_t", "level": "s0:c1,c2"}
	for _, o := range opts {
		k, v, _ := strings.Cut(o, ":")
		if _, ok := c[k]; !ok {
			return "", "", fmt.Errorf("bad label option %q", o)
		}
		c[k] = v
	}
	return c["user"] + ":" + c["role"] + ":" + c["type"] + ":" + c["level"],
		c["user"] + ":object_r:container_file_t:" + c["level"], nil
}

func useHost(t *testing.T, h testHost) {
	t.Helper()
	m, a, s, l, d, sw, c2, ctl := hostMounts, hostAppArmor, hostSELinux, selinuxInitLabels, hostDevices, hostSwap, hostCgroup2, hostControllers
	t.Cleanup(func() {
		hostMounts, hostAppArmor, hostSELinux, selinuxInitLabels, hostDevices, hostSwap, hostCgroup2, hostControllers = m, a, s, l, d, sw, c2, ctl
	})
	hostControllers = func() map[string]bool { return h.controllers }
	hostMounts = func() ([]*mountinfo.Info, error) { return h.mounts, nil }
	hostAppArmor = func() bool { return h.apparmor }
	hostSELinux = func() bool { return h.selinux }
	selinuxInitLabels = fakeLabels
	hostDevices = func() ([]specs.LinuxDevice, error) { return h.devices, nil }
	hostSwap = func() bool { return h.swap }
	hostCgroup2 = func() bool { return h.cgroup2 }
}

// specCase is an input delta and the spec delta it must make.
type specCase struct {
	name string
	host func(h *testHost)
	in   func(in *ContainerInput)
	want func(s *specs.Spec)
}

// caseInput fakes the host a case describes and builds its input.
func caseInput(t *testing.T, host func(*testHost), edit func(*ContainerInput)) *ContainerInput {
	t.Helper()
	h := defaultHost()
	if host != nil {
		host(&h)
	}
	useHost(t, h)
	in := baseInput(t)
	if edit != nil {
		edit(in)
	}
	return in
}

func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := caseInput(t, c.host, c.in)
			want := golden(in)
			if c.want != nil {
				c.want(want)
			}
			got, err := ContainerSpec(in)
			if err != nil {
				t.Fatalf("ContainerSpec: %v", err)
			}
			compareSpecs(t, got, want)
		})
	}
}

// errCase is an input that must be refused with a FieldError, or with a
// HostError when hostLimit is set.
type errCase struct {
	name      string
	host      func(h *testHost)
	in        func(in *ContainerInput)
	field     string
	msg       string // a part of the message
	hostLimit bool
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := caseInput(t, c.host, c.in)
			s, err := ContainerSpec(in)
			var fe *FieldError
			if he := (*HostError)(nil); c.hostLimit && errors.As(err, &he) {
				fe = &FieldError{Field: he.Field, Msg: he.Msg}
			} else if c.hostLimit || !errors.As(err, &fe) {
				t.Fatalf("got %v (spec %v), want a FieldError (host limit %v) on %s", err, s != nil, c.hostLimit, c.field)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", fe.Field, fe.Msg, c.field, c.msg)
			}
		})
	}
}

// compareSpecs compares the specs as runc reads them, as JSON, and shows
// where they differ.
func compareSpecs(t *testing.T, got, want *specs.Spec) {
	t.Helper()
	g, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("spec differs (- want, + got):\n%s", jsonDiff(string(w), string(g)))
	}
}

// jsonDiff shows the lines between the common head and tail, with some
// context.
func jsonDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	head := 0
	for head < len(al) && head < len(bl) && al[head] == bl[head] {
		head++
	}
	tail := 0
	for tail < len(al)-head && tail < len(bl)-head && al[len(al)-1-tail] == bl[len(bl)-1-tail] {
		tail++
	}
	const ctx = 4
	var sb strings.Builder
	from := max(0, head-ctx)
	for _, l := range al[from:head] {
		sb.WriteString("  " + l + "\n")
	}
	for _, l := range al[head : len(al)-tail] {
		sb.WriteString("- " + l + "\n")
	}
	for _, l := range bl[head : len(bl)-tail] {
		sb.WriteString("+ " + l + "\n")
	}
	for _, l := range al[len(al)-tail : min(len(al), len(al)-tail+ctx)] {
		sb.WriteString("  " + l + "\n")
	}
	return sb.String()
}

// secCtx is the config's security context, made if missing.
func secCtx(in *ContainerInput) *runtimeapi.LinuxContainerSecurityContext {
	if in.Config.Linux == nil {
		in.Config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if in.Config.Linux.SecurityContext == nil {
		in.Config.Linux.SecurityContext = &runtimeapi.LinuxContainerSecurityContext{}
	}
	return in.Config.Linux.SecurityContext
}

func resources(in *ContainerInput) *runtimeapi.LinuxContainerResources {
	if in.Config.Linux == nil {
		in.Config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	if in.Config.Linux.Resources == nil {
		in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{}
	}
	return in.Config.Linux.Resources
}

func setCaps(s *specs.Spec, caps ...string) {
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
}

func TestGolden(t *testing.T) {
	runSpecCases(t, []specCase{{name: "base"}})
}

func TestAnnotations(t *testing.T) {
	runSpecCases(t, []specCase{
		{
			name: "config annotations kept, the runtime's win",
			in: func(in *ContainerInput) {
				in.Config.Annotations = map[string]string{"a": "1", AnnSandboxID: "forged", "io.katacontainers.x": "y"}
			},
			want: func(s *specs.Spec) {
				s.Annotations["a"] = "1"
				s.Annotations["io.katacontainers.x"] = "y"
			},
		}, {
			name: "pod annotations only as the handler allows",
			in: func(in *ContainerInput) {
				in.Sandbox.Annotations = map[string]string{
					"io.katacontainers.config.hypervisor.default_vcpus": "2", "exact": "1", "exactly": "no",
					"other": "no", AnnSandboxID: "forged",
				}
				in.Sandbox.AllowedAnnotations = []string{"io.katacontainers.*", "exact", AnnSandboxID}
			},
			want: func(s *specs.Spec) {
				s.Annotations["io.katacontainers.config.hypervisor.default_vcpus"] = "2"
				s.Annotations["exact"] = "1"
			},
		},
		{
			name: "no pod annotation without allowed_annotations",
			in:   func(in *ContainerInput) { in.Sandbox.Annotations = map[string]string{"io.katacontainers.x": "y"} },
		},
	})
	useHost(t, defaultHost())
	s, err := ContainerSpec(baseInput(t))
	if err != nil {
		t.Fatal(err)
	}
	MarkSandbox(s, &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 150000, MemoryLimitInBytes: 256 << 20})
	want := golden(&ContainerInput{Rootfs: s.Root.Path})
	want.Annotations[AnnSandboxCPUPeriod] = "100000"
	want.Annotations[AnnSandboxCPUQuota] = "150000"
	want.Annotations[AnnSandboxMemory] = "268435456"
	want.Annotations[AnnContainerType] = "sandbox"
	want.Annotations[AnnCrioType] = "sandbox"
	delete(want.Annotations, AnnContainerName)
	delete(want.Annotations, AnnCrioName)
	compareSpecs(t, s, want)
}

func TestNilConfig(t *testing.T) {
	_, err := ContainerSpec(&ContainerInput{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "config" {
		t.Fatalf("got %v, want a FieldError on config", err)
	}
}
