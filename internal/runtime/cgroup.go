package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
