package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
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
