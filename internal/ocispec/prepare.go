package ocispec

import (
	"errors"
	"fmt"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux/label"
	"golang.org/x/sys/unix"
)

// relabel sets a path's SELinux label; a variable for the tests.
var relabel = label.Relabel

// PrepareHost does on the host what the spec ContainerSpec built for in
// relies on: it creates the image's VOLUME directories under in.VolumeDir,
// relabels for SELinux the mounts that ask for it (and the pod's files,
// shared by its containers), and loads the default AppArmor profile if the
// spec uses it. Call it after ContainerSpec, before creating the
// container; it is idempotent. Removing in.VolumeDir is the caller's, when
// the container is removed.
func PrepareHost(in *ContainerInput, spec *specs.Spec) error {
	for _, v := range ImageVolumes(in) {
		if err := createVolume(in.Rootfs, v); err != nil {
			return fmt.Errorf("create image volume: %w", err)
		}
	}
	if spec == nil {
		return nil
	}
	if spec.Linux != nil && spec.Linux.MountLabel != "" {
		if err := relabelMounts(in, spec.Linux.MountLabel); err != nil {
			return err
		}
	}
	if spec.Process != nil && spec.Process.ApparmorProfile == DefaultAppArmorProfile {
		if err := ensureAppArmorProfile(); err != nil {
			return err
		}
	}
	return nil
}

// relabelMounts gives the mounts with selinux_relabel the container's
// mount label, and the pod's files the shared variant of it.
func relabelMounts(in *ContainerInput, mountLabel string) error {
	ignore := func(err error) bool { return err == nil || errors.Is(err, unix.ENOTSUP) }
	for i, m := range in.Config.GetMounts() {
		if !m.GetSelinuxRelabel() {
			continue
		}
		host, err := filepath.EvalSymlinks(m.GetHostPath())
		if err != nil {
			return fieldErr(fmt.Sprintf("mounts[%d].host_path", i), "%v", err)
		}
		if unsafeToRelabel(host) {
			return fieldErr(fmt.Sprintf("mounts[%d].selinux_relabel", i), "refusing to relabel the system directory %s", host)
		}
		if err := relabel(host, mountLabel, false); !ignore(err) {
			return fmt.Errorf("relabel %s with %s: %w", host, mountLabel, err)
		}
	}
	sb := in.Sandbox
	shm := sb.ShmPath
	if shm == "/dev/shm" { // the host's, for a pod in the host's IPC namespace
		shm = ""
	}
	for _, p := range []string{sb.HostsFile, sb.ResolvFile, sb.HostnameFile, shm} {
		if p == "" {
			continue
		}
		if err := relabel(p, mountLabel, true); !ignore(err) {
			return fmt.Errorf("relabel %s with %s: %w", p, mountLabel, err)
		}
	}
	for _, v := range ImageVolumes(in) {
		if err := relabel(v.HostPath, mountLabel, false); !ignore(err) {
			return fmt.Errorf("relabel %s with %s: %w", v.HostPath, mountLabel, err)
		}
	}
	return nil
}
