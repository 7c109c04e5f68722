package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
)

// RemoveCgroup removes a cgroupfs path from every mounted hierarchy. runc
// does this at delete; the daemon needs it when runc's state is gone (a
// reboot wiped the runroot) but the directories are not. Idempotent.
func RemoveCgroup(path string) error {
	if path == "" || strings.Contains(path, ":") { // systemd-style paths belong to systemd
		return nil
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	var errs []error
	for _, h := range hierarchies {
		p := filepath.Join(h, path)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// JoinCgroup moves pid into the cgroupfs path in every hierarchy,
// creating it if needed. It places a monitor (conmon or a shim) where the
// handler's monitor_cgroup says, before the monitor forks anything, so
// that its children start there too.
func JoinCgroup(path string, pid int) error {
	m, err := fs.NewManager(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{SkipDevices: true}}, nil)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", path, err)
	}
	if err := m.Apply(pid); err != nil {
		return fmt.Errorf("move %d into cgroup %s: %w", pid, path, err)
	}
	return nil
}

// SetCgroupLimits writes CPU and memory limits to the existing cgroup dir
// (a path under the hierarchies' roots, such as a pod's cgroup parent),
// through opencontainers/cgroups: cpu and memory on cgroup v1, the unified
// files on v2 (CpuShares is converted to cpu.weight there). A cgroup that
// does not exist is an error wrapping fs.ErrNotExist: the daemon does not
// make the pod cgroups, the kubelet does.
func SetCgroupLimits(dir string, r *cgroups.Resources) error {
	if cgroups.IsCgroup2UnifiedMode() {
		p := filepath.Join(fs2.UnifiedMountpoint, dir)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
		v2 := *r
		if v2.CpuShares != 0 {
			v2.CpuWeight, v2.CpuShares = cgroups.ConvertCPUSharesToCgroupV2Value(v2.CpuShares), 0
		}
		m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &v2}, p)
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
		if err := m.Set(&v2); err != nil {
			return fmt.Errorf("set limits of cgroup %s: %w", p, err)
		}
		return nil
	}
	paths := map[string]string{}
	for _, sub := range []string{"cpu", "memory"} {
		mnt, err := cgroups.FindCgroupMountpoint("", sub)
		if err != nil {
			return fmt.Errorf("find the %s cgroup hierarchy: %w", sub, err)
		}
		p := filepath.Join(mnt, dir)
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("cgroup %s: %w", p, err)
		}
		paths[sub] = p
	}
	v1 := *r
	v1.SkipDevices = true // only cpu and memory have paths
	r = &v1
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: r}, paths)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if err := m.Set(r); err != nil {
		return fmt.Errorf("set limits of cgroup %s: %w", dir, err)
	}
	return nil
}
