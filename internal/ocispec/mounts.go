package ocispec

import (
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setMounts adds the config's bind mounts, the pod's files (/etc/hosts,
// /etc/resolv.conf, /etc/hostname, /dev/shm) unless the config mounts its
// own, and the image's VOLUMEs. They go after the base mounts, but always
// before a mount below them; each replaces a base mount on the same path.
func setMounts(g *generate.Generator, in *ContainerInput) error {
	sb := in.Sandbox
	var ms []specs.Mount
	taken := map[string]bool{}
	for i, m := range in.Config.GetMounts() {
		field := "mounts[" + strconv.Itoa(i) + "]"
		var sm specs.Mount
		var err error
		if m.GetImage().GetImage() != "" {
			sm, err = imageVolumeMount(field, m, in.ImageVolumes[i])
		} else {
			sm, err = configMount(field, m)
		}
		if err != nil {
			return err
		}
		taken[sm.Destination] = true
		ms = append(ms, sm)
	}
	rw := "rw"
	if in.Config.GetLinux().GetSecurityContext().GetReadonlyRootfs() {
		rw = "ro"
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", sb.HostsFile}, {"/etc/resolv.conf", sb.ResolvFile}, {"/etc/hostname", sb.HostnameFile},
	} {
		if f.src != "" && !taken[f.dst] {
			ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate", rw}})
		}
	}
	if sb.ShmPath != "" && !taken["/dev/shm"] {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: sb.ShmPath,
			Options: []string{"rbind", "rprivate", "nosuid", "noexec", "nodev", "rw"}})
	}
	for _, v := range ImageVolumes(in) {
		ms = append(ms, specs.Mount{Destination: v.ContainerPath, Type: "bind", Source: v.HostPath, Options: []string{"rbind", "rprivate", "rw"}})
	}
	// Mounts propagate to and from the host only through a root mount that
	// propagates too, as containerd sets it.
	for _, m := range ms {
		switch {
		case slices.Contains(m.Options, "rshared"):
			g.Config.Linux.RootfsPropagation = "rshared"
		case slices.Contains(m.Options, "rslave") && g.Config.Linux.RootfsPropagation == "":
			g.Config.Linux.RootfsPropagation = "rslave"
		}
	}
	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].Destination) < depth(ms[j].Destination) })
	for _, m := range ms {
		g.RemoveMount(m.Destination)
		g.Config.Mounts = insertMount(g.Config.Mounts, m)
	}
	return nil
}

// insertMount puts m before the first mount below it, so it is mounted
// before them.
func insertMount(ms []specs.Mount, m specs.Mount) []specs.Mount {
	for i := range ms {
		if isBelow(ms[i].Destination, m.Destination) {
			return append(ms[:i], append([]specs.Mount{m}, ms[i:]...)...)
		}
	}
	return append(ms, m)
}

func isBelow(p, dir string) bool {
	return len(p) > len(dir) && p[:len(dir)] == dir && (dir == "/" || p[len(dir)] == '/')
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// imageVolumeMount binds an image mounted read-only by the image service
// (KEP-4639) at the container path.
func imageVolumeMount(field string, m *runtimeapi.Mount, hostPath string) (specs.Mount, error) {
	dst := m.GetContainerPath()
	switch {
	case dst == "":
		return specs.Mount{}, fieldErr(field+".container_path", "is empty")
	case !filepath.IsAbs(dst):
		return specs.Mount{}, fieldErr(field+".container_path", "%q is not absolute", dst)
	case hostPath == "":
		return specs.Mount{}, fieldErr(field+".image", "image %q is not mounted", m.GetImage().GetImage())
	}
	return specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: hostPath,
		Options: []string{"rbind", "rprivate", "ro", "nosuid", "nodev"}}, nil
}

// configMount checks one CRI mount and turns it into a bind mount.
func configMount(field string, m *runtimeapi.Mount) (specs.Mount, error) {
	var none specs.Mount
	dst := m.GetContainerPath()
	switch {
	case dst == "":
		return none, fieldErr(field+".container_path", "is empty")
	case !filepath.IsAbs(dst):
		return none, fieldErr(field+".container_path", "%q is not absolute", dst)
	case filepath.Clean(dst) == "/":
		return none, fieldErr(field+".container_path", "cannot mount over the root file system")
	case m.GetHostPath() == "":
		return none, fieldErr(field+".host_path", "is empty")
	}
	host, err := filepath.EvalSymlinks(m.GetHostPath())
	if err != nil {
		return none, fieldErr(field+".host_path", "%v", err)
	}
	prop, err := propagation(host, m.GetPropagation(), field)
	if err != nil {
		return none, err
	}
	opts := []string{"rbind", prop}
	if m.GetReadonly() {
		opts = append(opts, "ro")
	} else {
		opts = append(opts, "rw")
	}
	if m.GetRecursiveReadOnly() {
		if !m.GetReadonly() {
			return none, fieldErr(field+".recursive_read_only", "needs readonly")
		}
		if m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE {
			return none, fieldErr(field+".recursive_read_only", "needs private propagation, not %v", m.GetPropagation())
		}
		opts = append(opts, "rro")
	}
	for j, o := range m.GetMountOptions() {
		if o == "" || strings.Contains(o, ",") {
			return none, fieldErr(field+".mount_options["+strconv.Itoa(j)+"]", "invalid option %q", o)
		}
		opts = append(opts, o)
	}
	if m.GetSelinuxRelabel() && hostSELinux() && unsafeToRelabel(host) {
		return none, fieldErr(field+".selinux_relabel", "refusing to relabel the system directory %s", host)
	}
	uids, err := idMappings(field+".uidMappings", m.GetUidMappings())
	if err != nil {
		return none, err
	}
	gids, err := idMappings(field+".gidMappings", m.GetGidMappings())
	if err != nil {
		return none, err
	}
	return specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: host, Options: opts,
		UIDMappings: uids, GIDMappings: gids}, nil
}

// unsafeToRelabel is the host's system directories: relabeling them for a
// container would break the host.
func unsafeToRelabel(p string) bool {
	switch filepath.Clean(p) {
	case "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc",
		"/root", "/run", "/sbin", "/sys", "/tmp", "/usr", "/var":
		return true
	}
	return false
}

// propagation checks the host mount can support what the config asks:
// shared needs a shared host mount, slave a shared or slave one.
func propagation(host string, p runtimeapi.MountPropagation, field string) (string, error) {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "rprivate", nil
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		mi, err := mountOf(host)
		if err != nil {
			return "", fieldErr(field+".host_path", "%v", err)
		}
		if !strings.Contains(mi.Optional, "shared:") {
			return "", fieldErr(field+".propagation", "bidirectional propagation needs %s to be on a shared mount, but %s is %s",
				host, mi.Mountpoint, propagationOf(mi))
		}
		return "rshared", nil
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		mi, err := mountOf(host)
		if err != nil {
			return "", fieldErr(field+".host_path", "%v", err)
		}
		if !strings.Contains(mi.Optional, "shared:") && !strings.Contains(mi.Optional, "master:") {
			return "", fieldErr(field+".propagation", "host-to-container propagation needs %s to be on a shared or slave mount, but %s is %s",
				host, mi.Mountpoint, propagationOf(mi))
		}
		return "rslave", nil
	}
	return "", fieldErr(field+".propagation", "unknown propagation %d", p)
}

func propagationOf(mi *mountinfo.Info) string {
	switch {
	case strings.Contains(mi.Optional, "shared:"):
		return "shared"
	case strings.Contains(mi.Optional, "master:"):
		return "slave"
	}
	return "private"
}

// mountOf is the host mount that holds p: the deepest, and of those on
// one path the last, which is on top.
func mountOf(p string) (*mountinfo.Info, error) {
	mounts, err := hostMounts()
	if err != nil {
		return nil, err
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if p == m.Mountpoint || isBelow(p, m.Mountpoint) {
			if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
				best = m
			}
		}
	}
	if best == nil {
		return nil, errors.New("no mount holds " + p)
	}
	return best, nil
}
