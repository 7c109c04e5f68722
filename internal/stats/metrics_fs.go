package stats

import (
	"fmt"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

var mountSources sync.Map // device number -> mount source

// ReadFsInfo describes the filesystem holding path: its size and inodes
// from statfs, and its device, the source of its mount as mountinfo lists
// it (cached by device number).
func ReadFsInfo(path string) (*FsInfo, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", path, err)
	}
	fi := &FsInfo{Capacity: st.Blocks * uint64(st.Bsize), InodesTotal: st.Files, InodesFree: st.Ffree}
	var s unix.Stat_t
	if err := unix.Stat(path, &s); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	dev := uint64(s.Dev)
	if v, ok := mountSources.Load(dev); ok {
		fi.Device = v.(string)
		return fi, nil
	}
	mounts, err := mountinfo.GetMounts(byDevice(unix.Major(dev), unix.Minor(dev)))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	if len(mounts) > 0 && mounts[0].Source != "" {
		fi.Device = mounts[0].Source
		mountSources.Store(dev, fi.Device)
	} else {
		fi.Device = fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	}
	return fi, nil
}

// byDevice keeps the mounts of device major:minor; the first one is
// enough, every mount of a device has its source.
func byDevice(major, minor uint32) mountinfo.FilterFunc {
	found := false
	return func(m *mountinfo.Info) (skip, stop bool) {
		if found || m.Major != int(major) || m.Minor != int(minor) {
			return true, found
		}
		found = true
		return false, true
	}
}
