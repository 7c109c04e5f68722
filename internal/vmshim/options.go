package vmshim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/vmshim/guest"
	"github.com/cradle-runtime/cradle/internal/vmshim/qemu"
	"github.com/cradle-runtime/cradle/internal/vmshim/tap"
	"github.com/cradle-runtime/cradle/internal/vmshim/vm"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// options are the shim's, from its environment (the handler's
// monitor_env): CRADLE_VM_KERNEL, CRADLE_VM_AGENT, CRADLE_VM_RUNTIME,
// CRADLE_VM_CACHE, CRADLE_VM_ACCEL (auto, kvm or tcg), CRADLE_VM_CPUS and
// CRADLE_VM_MEMORY_MIB (the size of a pod without sizing annotations).
type options struct {
	kernel, release string
	agent, runtime  string
	cache           string
	accel           string
	cpus, memoryMiB int
}

func loadOptions() (options, error) {
	o := options{kernel: os.Getenv("CRADLE_VM_KERNEL"), agent: os.Getenv("CRADLE_VM_AGENT"),
		runtime: os.Getenv("CRADLE_VM_RUNTIME"), cache: os.Getenv("CRADLE_VM_CACHE"),
		accel: os.Getenv("CRADLE_VM_ACCEL"), cpus: 1, memoryMiB: 256}
	var err error
	if o.kernel == "" {
		if o.kernel, o.release, err = guest.FindKernel("/boot", "/lib/modules"); err != nil {
			return o, fmt.Errorf("CRADLE_VM_KERNEL unset and %w", err)
		}
	} else {
		if _, err := os.Stat(o.kernel); err != nil {
			return o, fmt.Errorf("CRADLE_VM_KERNEL=%q: %w", o.kernel, err)
		}
		o.release = strings.TrimPrefix(filepath.Base(o.kernel), "vmlinuz-")
	}
	if o.agent == "" {
		self, err := os.Executable()
		if err != nil {
			return o, err
		}
		o.agent = filepath.Join(filepath.Dir(self), "cradle-vm-agent")
	}
	if _, err := os.Stat(o.agent); err != nil {
		return o, fmt.Errorf("guest agent (CRADLE_VM_AGENT): %w", err)
	}
	if o.runtime == "" {
		// Not crun: Debian 12's 1.8.1 refuses the runtime-spec 1.3
		// version that cradle writes ("unknown version specified").
		o.runtime = "/usr/sbin/runc"
	}
	if o.cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return o, fmt.Errorf("CRADLE_VM_CACHE unset and %w", err)
		}
		o.cache = filepath.Join(dir, "cradle", "vm-guest")
	}
	switch o.accel {
	case "":
		o.accel = "auto"
	case "auto", "kvm", "tcg":
	default:
		return o, fmt.Errorf("CRADLE_VM_ACCEL=%q: want auto, kvm or tcg", o.accel)
	}
	for _, e := range []struct {
		name string
		dst  *int
	}{{"CRADLE_VM_CPUS", &o.cpus}, {"CRADLE_VM_MEMORY_MIB", &o.memoryMiB}} {
		if v := os.Getenv(e.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return o, fmt.Errorf("%s=%q: want a positive integer", e.name, v)
			}
			*e.dst = n
		}
	}
	return o, nil
}

// podSize is the VM's vCPUs and memory from the pod's sizing
// annotations (Kata reads the same), else the defaults.
func podSize(o options, ann map[string]string) (int, int) {
	cpus, mem := o.cpus, o.memoryMiB
	quota, _ := strconv.ParseInt(ann[ocispec.AnnSandboxCPUQuota], 10, 64)
	period, _ := strconv.ParseInt(ann[ocispec.AnnSandboxCPUPeriod], 10, 64)
	if quota > 0 && period > 0 {
		cpus = int((quota + period - 1) / period)
	}
	if b, _ := strconv.ParseInt(ann[ocispec.AnnSandboxMemory], 10, 64); b > 0 {
		// The guest kernel and agent need room beside the pod's limit.
		mem = max(int(b>>20)+128, 256)
	}
	return cpus, mem
}

// accel is the accelerator to use; "auto" probes KVM once per host and
// cache (a hanging nested KVM costs the probe's timeout once).
func (s *service) accel(ctx context.Context, initrd string) string {
	if s.opts.accel != "auto" {
		return s.opts.accel
	}
	mark := filepath.Join(s.opts.cache, "accel")
	if b, err := os.ReadFile(mark); err == nil {
		if a := strings.TrimSpace(string(b)); a == "kvm" || a == "tcg" {
			return a
		}
	}
	a := qemu.Accel(ctx, s.opts.kernel, initrd, 15*time.Second)
	_ = os.WriteFile(mark, []byte(a+"\n"), 0o644)
	return a
}

func (s *service) bootVM(ctx context.Context, sp *specs.Spec) (*vm.VM, error) {
	img, err := guest.Build(guest.Config{Agent: s.opts.agent, Runtime: s.opts.runtime, KernelRelease: s.opts.release, CacheDir: s.opts.cache})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.shareDir(), 0o700); err != nil {
		return nil, err
	}
	cpus, mem := podSize(s.opts, sp.Annotations)
	netns := netnsPath(sp)
	group := s.f.id
	if g := sp.Annotations[ocispec.AnnSandboxID]; g != "" {
		group = g
	}
	name := "cradle-" + group
	if len(name) > 19 {
		name = name[:19]
	}
	v, err := vm.Boot(ctx, vm.Options{Name: name, Kernel: s.opts.kernel, Initrd: img, Accel: s.accel(ctx, img),
		CPUs: cpus, MemoryMiB: mem, StateDir: filepath.Join(s.dir, "vm"), ShareDir: s.shareDir(),
		NetNS: netns, Hostname: sp.Hostname})
	if err != nil {
		_ = os.RemoveAll(s.dir)
		return nil, err
	}
	s.mu.Lock()
	s.vm, s.netns = v, netns
	s.mu.Unlock()
	return v, nil
}

// removePod removes what the pod's VM left: the filters on eth0, the
// share's mounts, the state directory.
func removePod(dir, netns string) error {
	var errs []error
	if netns != "" {
		errs = append(errs, tap.Remove(netns, "eth0", vm.TapName))
	}
	share := filepath.Join(dir, "share")
	entries, _ := os.ReadDir(share)
	for _, e := range entries {
		errs = append(errs, unshareContainer(share, e.Name()))
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		slog.Warn("remove pod vm state", "dir", dir, "error", err)
		return err
	}
	return nil
}
