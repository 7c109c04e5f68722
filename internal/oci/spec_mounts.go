package oci

import (
	"errors"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func setMounts(g *generate.Generator, in *ContainerInput) error {
	sb := in.Sandbox
	cfg := in.Config
	privileged := cfg.GetLinux().GetSecurityContext().GetPrivileged()
	taken := map[string]bool{}
	var user []specs.Mount
	for i, m := range cfg.GetMounts() {
		field := "mounts[" + itoa(i) + "]"
		if m.GetContainerPath() == "" {
			return fieldErr(field+".container_path", "is empty")
		}
		if !filepath.IsAbs(m.GetContainerPath()) {
			return fieldErr(field+".container_path", "%q is not absolute", m.GetContainerPath())
		}
		if m.GetImage() != nil && m.GetImage().GetImage() != "" {
			return fieldErr(field+".image", "image volumes are not supported yet")
		}
		if m.GetHostPath() == "" {
			return fieldErr(field+".host_path", "is empty")
		}
		host, err := filepath.EvalSymlinks(m.GetHostPath())
		if err != nil {
			return fieldErr(field+".host_path", "%q: %v", m.GetHostPath(), err)
		}
		opts := []string{"rbind"}
		if m.GetReadonly() {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		prop, err := propagation(host, m.GetPropagation(), field)
		if err != nil {
			return err
		}
		opts = append(opts, prop)
		if m.GetRecursiveReadOnly() {
			if !m.GetReadonly() {
				return fieldErr(field+".recursive_read_only", "needs readonly")
			}
			opts = append(opts, "rro")
		}
		dst := filepath.Clean(m.GetContainerPath())
		taken[dst] = true
		user = append(user, specs.Mount{Destination: dst, Type: "bind", Source: host, Options: opts})
	}
	// Per-pod files, unless the config mounts its own.
	podFile := func(dst, src string, ro bool) {
		if src == "" || taken[dst] {
			return
		}
		opt := "rw"
		if ro {
			opt = "ro"
		}
		user = append(user, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"bind", "rprivate", opt}})
	}
	readonlyRoot := cfg.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	podFile("/etc/hosts", sb.HostsFile, readonlyRoot)
	podFile("/etc/resolv.conf", sb.ResolvFile, readonlyRoot)
	podFile("/etc/hostname", sb.HostnameFile, readonlyRoot)
	if sb.ShmPath != "" && !taken["/dev/shm"] {
		g.RemoveMount("/dev/shm")
		user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: sb.ShmPath, Options: []string{"rbind", "rprivate", "rw"}})
	}
	if privileged {
		// Privileged containers see sysfs read-write, like docker and CRI-O.
		for i, m := range g.Config.Mounts {
			if m.Destination == "/sys" {
				g.Config.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "rw"}
			}
		}
	}
	for _, m := range user {
		g.RemoveMount(m.Destination)
		g.AddMount(m)
	}
	return nil
}

// propagation checks the host mount can support what the config asks.
func propagation(host string, p runtimeapi.MountPropagation, field string) (string, error) {
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "rprivate", nil
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		opts, err := mountOptionalFields(host)
		if err != nil {
			return "", fieldErr(field+".host_path", "%v", err)
		}
		if !strings.Contains(opts, "shared:") {
			return "", fieldErr(field+".propagation", "bidirectional propagation needs %q to be on a shared mount", host)
		}
		return "rshared", nil
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		opts, err := mountOptionalFields(host)
		if err != nil {
			return "", fieldErr(field+".host_path", "%v", err)
		}
		if !strings.Contains(opts, "shared:") && !strings.Contains(opts, "master:") {
			return "", fieldErr(field+".propagation", "host-to-container propagation needs %q to be on a shared or slave mount", host)
		}
		return "rslave", nil
	}
	return "", fieldErr(field+".propagation", "unknown propagation %d", p)
}

// mountOptionalFields returns the propagation fields of the mount holding p.
func mountOptionalFields(p string) (string, error) {
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return "", err
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		if p == m.Mountpoint || strings.HasPrefix(p, strings.TrimSuffix(m.Mountpoint, "/")+"/") || m.Mountpoint == "/" {
			if best == nil || len(m.Mountpoint) >= len(best.Mountpoint) {
				best = m
			}
		}
	}
	if best == nil {
		return "", errors.New("no mount holds " + p)
	}
	return best.Optional, nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
