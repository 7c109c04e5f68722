package stats

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var mountSources sync.Map // device number -> mount source

// ReadFsInfo describes the filesystem holding path: its size and inodes
// from statfs, and its device, the source of its mount as
// /proc/self/mountinfo lists it (cached by device number).
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
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	if src := mountSource(string(data), unix.Major(dev), unix.Minor(dev)); src != "" {
		fi.Device = src
		mountSources.Store(dev, src)
	} else {
		fi.Device = fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	}
	return fi, nil
}

// mountSource finds the source of a mount of device major:minor in a
// mountinfo file ("36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw").
func mountSource(mountinfo string, major, minor uint32) string {
	want := strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10)
	for _, line := range strings.Split(mountinfo, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 2 || f[2] != want {
			continue
		}
		return g[1]
	}
	return ""
}
