package validate

import (
	"fmt"
	"path/filepath"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Container checks a CreateContainer config. What needs the image or the
// host (users, capabilities, host paths that must exist) is checked when
// the spec is built, and rolled back from there.
func Container(c *runtimeapi.ContainerConfig) error {
	switch {
	case c == nil:
		return errf("config", "is required")
	case c.GetMetadata() == nil:
		return errf("config.metadata", "is required")
	case c.GetImage() == nil || c.GetImage().GetImage() == "":
		return errf("config.image.image", "is empty")
	}
	if err := name("config.metadata.name", c.GetMetadata().GetName(), true); err != nil {
		return err
	}
	if lp := c.GetLogPath(); lp != "" && !filepath.IsLocal(lp) {
		// The log file is created by the runtime as root: a path out of
		// the pod's log directory would write anywhere on the host.
		return errf("config.log_path", "%q is not a relative path inside the pod's log directory", lp)
	}
	if err := Argv("config", c.GetCommand(), c.GetArgs(), c.GetEnvs()); err != nil {
		return err
	}
	if d := c.GetWorkingDir(); d != "" {
		if err := absPath("config.working_dir", d); err != nil {
			return err
		}
	}
	for i, m := range c.GetMounts() {
		if err := mount(fmt.Sprintf("config.mounts[%d]", i), m); err != nil {
			return err
		}
	}
	for i, d := range c.GetDevices() {
		if err := device(fmt.Sprintf("config.devices[%d]", i), d); err != nil {
			return err
		}
	}
	if err := labels(c.GetLabels(), c.GetAnnotations()); err != nil {
		return err
	}
	l := c.GetLinux()
	if err := Resources("config.linux.resources", l.GetResources()); err != nil {
		return err
	}
	sc := l.GetSecurityContext()
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return errf("config.linux.security_context.run_as_group", "needs run_as_user or run_as_username")
	}
	return seccomp("config.linux.security_context.seccomp", sc.GetSeccomp())
}

// Argv checks a process's command, arguments and environment against
// execve's limits: a string of at most MaxArgStrlen, all of them together
// (with their terminating NULs) at most ArgMax. The image's entrypoint
// and environment add to this when the spec is built.
func Argv(field string, cmd, args []string, env []*runtimeapi.KeyValue) error {
	total := 0
	check := func(f, s string) error {
		if len(s)+1 > MaxArgStrlen {
			return errf(f, "is %d bytes long; the kernel's limit for one argument is %d", len(s), MaxArgStrlen-1)
		}
		total += len(s) + 1
		return noNUL(f, s)
	}
	for i, s := range cmd {
		if err := check(fmt.Sprintf("%s.command[%d]", field, i), s); err != nil {
			return err
		}
	}
	for i, s := range args {
		if err := check(fmt.Sprintf("%s.args[%d]", field, i), s); err != nil {
			return err
		}
	}
	for i, kv := range env {
		f := fmt.Sprintf("%s.envs[%d]", field, i)
		if k := kv.GetKey(); k == "" {
			return errf(f+".key", "is empty")
		} else if err := printable(f+".key", k); err != nil {
			return err
		}
		if err := check(f, kv.GetKey()+"="+string(kv.GetValue())); err != nil {
			return err
		}
	}
	if total > ArgMax {
		return errf(field, "command, args and envs are %d bytes together; the kernel's limit (ARG_MAX) is %d", total, ArgMax)
	}
	return nil
}

// Exec checks an ExecSync or Exec command.
func Exec(field string, cmd []string) error {
	if len(cmd) == 0 {
		return errf(field, "is empty")
	}
	return Argv(field, cmd, nil, nil)
}

func mount(field string, m *runtimeapi.Mount) error {
	if m == nil {
		return errf(field, "is null")
	}
	if err := absPath(field+".container_path", m.GetContainerPath()); err != nil {
		return err
	}
	if img := m.GetImage(); img != nil && img.GetImage() != "" {
		// An image volume: the host path is the image's, and the sub-path
		// must stay inside it.
		if sp := m.GetImageSubPath(); sp != "" && !filepath.IsLocal(sp) {
			return errf(field+".image_sub_path", "%q is not a relative path inside the image", sp)
		}
		return nil
	}
	return absPath(field+".host_path", m.GetHostPath())
}

func device(field string, d *runtimeapi.Device) error {
	if d == nil {
		return errf(field, "is null")
	}
	if err := absPath(field+".container_path", d.GetContainerPath()); err != nil {
		return err
	}
	if err := absPath(field+".host_path", d.GetHostPath()); err != nil {
		return err
	}
	for _, r := range d.GetPermissions() {
		if r != 'r' && r != 'w' && r != 'm' {
			return errf(field+".permissions", "%q: want some of r, w and m", d.GetPermissions())
		}
	}
	return nil
}
