// Package agent is cradle-vm-agent, the /init of a cradle microVM: it
// mounts the guest's filesystems, loads the kernel modules the initramfs
// carries, and serves the agent API (internal/agent/api) on the
// virtio-serial port, running containers with the guest's runc.
package agent

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/cradle-runtime/cradle/internal/agent/api"
	"golang.org/x/sys/unix"
)

// ModuleOrder is the initramfs file listing the modules to load, one
// path a line, dependencies first (the builder resolves modules.dep).
const ModuleOrder = "/lib/modules/cradle.order"

// Dirs in the guest.
const (
	ShareDir  = "/run/cradle/share"   // the host's 9p share
	BundleDir = "/run/cradle/bundles" // runc bundles
	RuncRoot  = "/run/runc"
)

type mnt struct {
	src, dst, fstype string
	flags            uintptr
	data             string
}

// setupMounts mounts what a Linux userland and runc expect.
func setupMounts() error {
	const common = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, m := range []mnt{
		{"proc", "/proc", "proc", common, ""},
		{"sysfs", "/sys", "sysfs", common, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"},
		{"tmpfs", "/dev/shm", "tmpfs", common, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", common, ""},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	for _, d := range []string{ShareDir, BundleDir, RuncRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	// runc needs the controllers delegated to child cgroups.
	if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+cpu +memory +pids +io"), 0o644); err != nil {
		slog.Warn("enable cgroup controllers", "error", err)
	}
	_ = os.Symlink("/proc/self/fd", "/dev/fd")
	return nil
}

// loadModules loads each module of the order file, in order.
func loadModules(order string) error {
	f, err := os.Open(order)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		if err := loadModule(p); err != nil {
			return err
		}
	}
	return sc.Err()
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", filepath.Base(path), err)
	}
	return nil
}

// Init prepares the guest; it runs as PID 1 before Serve.
func Init() error {
	if err := setupMounts(); err != nil {
		return err
	}
	if err := loadModules(ModuleOrder); err != nil {
		return err
	}
	if err := unix.Mount(api.ShareTag, ShareDir, "9p", 0, "trans=virtio,version=9p2000.L,msize=262144,cache=mmap"); err != nil {
		// A VM without a share (a probe boot) still serves.
		slog.Info("no 9p share", "error", err)
	}
	if err := linkUp("lo"); err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return nil
}

// Probe reports a probe boot (cradle.probe on the kernel command line).
func Probe() bool {
	data, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(data)) {
		if f == "cradle.probe=1" {
			return true
		}
	}
	return false
}
