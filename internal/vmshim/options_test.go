package vmshim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cradle-runtime/cradle/internal/ocispec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPodSize(t *testing.T) {
	o := options{cpus: 1, memoryMiB: 256}
	for _, c := range []struct {
		ann       map[string]string
		cpus, mem int
	}{
		{nil, 1, 256},
		{map[string]string{ocispec.AnnSandboxCPUQuota: "150000", ocispec.AnnSandboxCPUPeriod: "100000"}, 2, 256},
		{map[string]string{ocispec.AnnSandboxMemory: "536870912"}, 1, 640},
		{map[string]string{ocispec.AnnSandboxMemory: "1048576"}, 1, 256},
		{map[string]string{ocispec.AnnSandboxCPUQuota: "-1", ocispec.AnnSandboxCPUPeriod: "100000"}, 1, 256},
	} {
		if cpus, mem := podSize(o, c.ann); cpus != c.cpus || mem != c.mem {
			t.Errorf("%v: %d vCPUs %d MiB, want %d %d", c.ann, cpus, mem, c.cpus, c.mem)
		}
	}
}

func TestLoadOptions(t *testing.T) {
	dir := t.TempDir()
	kernel, agent := filepath.Join(dir, "vmlinuz-6.1.0-9-amd64"), filepath.Join(dir, "agent")
	for _, f := range []string{kernel, agent} {
		if err := os.WriteFile(f, nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CRADLE_VM_KERNEL", kernel)
	t.Setenv("CRADLE_VM_AGENT", agent)
	t.Setenv("CRADLE_VM_CACHE", t.TempDir())
	o, err := loadOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.release != "6.1.0-9-amd64" || o.accel != "auto" || o.cpus != 1 || o.memoryMiB != 256 || o.runtime == "" {
		t.Errorf("defaults: %+v", o)
	}
	for k, v := range map[string]string{"CRADLE_VM_ACCEL": "hvf", "CRADLE_VM_CPUS": "0", "CRADLE_VM_MEMORY_MIB": "x",
		"CRADLE_VM_KERNEL": "/nonexistent/vmlinuz-1", "CRADLE_VM_AGENT": "/nonexistent/agent"} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			if _, err := loadOptions(); err == nil || !strings.Contains(err.Error(), k) {
				t.Errorf("%s=%s: %v, want an error naming it", k, v, err)
			}
		})
	}
}

func TestShareRejectsEscapingIDs(t *testing.T) {
	share := t.TempDir()
	for _, id := range []string{"", ".", "..", "../x", "a/b"} {
		if err := shareContainer(share, id, t.TempDir(), &specs.Spec{}); err == nil {
			t.Errorf("id %q accepted", id)
		}
		if err := unshareContainer(share, id); err == nil {
			t.Errorf("unshare of id %q accepted", id)
		}
	}
}

// TestShareContainer binds a root and a file and a directory mount into
// the share, rewrites the spec, and unshares them all (root only).
func TestShareContainer(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for bind mounts")
	}
	share, src := t.TempDir(), t.TempDir()
	root := filepath.Join(src, "root")
	vol := filepath.Join(src, "vol")
	file := filepath.Join(src, "resolv.conf")
	for _, d := range []string{root, vol} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "marker"), []byte("r"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("nameserver 10.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/etc/resolv.conf", Type: "bind", Source: file, Options: []string{"rbind", "ro"}},
		{Destination: "/data", Source: vol, Options: []string{"rbind"}},
		{Destination: "/dev/shm", Type: "bind", Source: vol, Options: []string{"rbind"}},
	}}
	if err := shareContainer(share, "c1", root, sp); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unshareContainer(share, "c1") })
	if b, err := os.ReadFile(filepath.Join(share, "c1", "rootfs", "marker")); err != nil || string(b) != "r" {
		t.Fatalf("rootfs in the share: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(share, "c1", "m1")); err != nil || !strings.Contains(string(b), "nameserver") {
		t.Fatalf("file mount in the share: %q %v", b, err)
	}
	if sp.Mounts[0].Source != "proc" || sp.Mounts[1].Source != "/run/cradle/share/c1/m1" || sp.Mounts[2].Source != "/run/cradle/share/c1/m2" {
		t.Errorf("rewritten sources: %+v", sp.Mounts)
	}
	if sp.Mounts[3].Type != "tmpfs" {
		t.Errorf("/dev/shm: %+v, want a guest tmpfs", sp.Mounts[3])
	}
	if err := unshareContainer(share, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(share, "c1")); !os.IsNotExist(err) {
		t.Errorf("share dir left: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "marker")); err != nil || string(b) != "r" {
		t.Errorf("the container's own files were touched: %q %v", b, err)
	}
}
