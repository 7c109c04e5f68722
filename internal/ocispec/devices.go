package ocispec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	"golang.org/x/sys/unix"
)

// defaultDeviceRules deny every device but the usual character devices,
// as docker (with runc's additions) does: null, zero, full, random,
// urandom, tty, console, ptmx and the pty slaves.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	c := func(major, minor int64) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		c(1, 3), c(1, 5), c(1, 7), c(1, 8), c(1, 9), // null zero full random urandom
		c(5, 0), c(5, 1), c(5, 2), // tty console ptmx
		c(136, -1), // /dev/pts/*
	}
}

// setDevices adds the config's devices and lets the container use them;
// a privileged container gets every host device and the use of all,
// unless its handler is privileged_without_host_devices.
func setDevices(g *generate.Generator, in *ContainerInput) error {
	privileged := in.Config.GetLinux().GetSecurityContext().GetPrivileged() && !in.PrivilegedWithoutHostDevices
	if privileged {
		devs, err := hostDevices()
		if err != nil {
			return fmt.Errorf("list host devices: %w", err)
		}
		for _, d := range devs {
			g.AddDevice(d)
		}
		g.Config.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for i, d := range in.Config.GetDevices() {
		field := "devices[" + strconv.Itoa(i) + "]"
		ctr, host, perms := d.GetContainerPath(), d.GetHostPath(), d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		switch {
		case ctr == "":
			return fieldErr(field+".container_path", "is empty")
		case !filepath.IsAbs(ctr):
			return fieldErr(field+".container_path", "%q is not absolute", ctr)
		case host == "":
			return fieldErr(field+".host_path", "is empty")
		case strings.Trim(perms, "rwm") != "":
			return fieldErr(field+".permissions", "%q: want some of r, w and m", d.GetPermissions())
		}
		devs, err := devicesUnder(host, filepath.Clean(ctr), false)
		if err != nil {
			return fieldErr(field+".host_path", "%v", err)
		}
		for _, dev := range devs {
			ownDevice(g, in, &dev)
			g.AddDevice(dev)
			if !privileged {
				g.AddLinuxResourcesDevice(true, dev.Type, &dev.Major, &dev.Minor, perms)
			}
		}
	}
	return nil
}

// ownDevice makes dev the container's user's when the daemon is told to
// and the process (setUser ran before) is not root, as containerd and CRI-O
// do for device_ownership_from_security_context; root keeps the host's
// owner.
func ownDevice(g *generate.Generator, in *ContainerInput, dev *specs.LinuxDevice) {
	u := g.Config.Process.User
	if !in.Defaults.DeviceOwnershipFromSecurityContext || u.UID == 0 {
		return
	}
	uid, gid := u.UID, u.GID
	dev.UID, dev.GID = &uid, &gid
}

// devicesUnder is the device at host, or the devices in the directory at
// host (a tree, skipping what is not a device), at the same places under
// ctr. With quiet, a directory with no device is no error.
func devicesUnder(host, ctr string, quiet bool) ([]specs.LinuxDevice, error) {
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, err := deviceFromPath(host, ctr)
		if err != nil {
			return nil, err
		}
		return []specs.LinuxDevice{*d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(host, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && p != host && skipDevDir[e.Name()] {
			return filepath.SkipDir
		}
		if e.IsDir() || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || (quiet && e.Name() == "console") {
			return nil
		}
		rel, _ := filepath.Rel(host, p)
		d, err := deviceFromPath(p, filepath.Join(ctr, rel))
		if err != nil {
			return nil // gone meanwhile
		}
		out = append(out, *d)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && !quiet {
		return nil, errors.New(host + " holds no device")
	}
	return out, nil
}

// skipDevDir are the directories of /dev that hold no device to pass on,
// as runc skips them.
var skipDevDir = map[string]bool{"pts": true, "shm": true, "fd": true, "mqueue": true, ".lxc": true, ".lxd-mounts": true, ".udev": true}

func deviceFromPath(host, ctr string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: host, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return nil, fmt.Errorf("%s is not a device", host)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path: ctr, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}
