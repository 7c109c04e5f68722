package ocispec

import (
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
)

// DefaultCapabilities is the usual container set (docker's and CRI-O's).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths are the usual lists (moby's
// and the kubelet's); the config's lists replace them.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap", "/proc/interrupts",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// BoundingSet returns the capabilities in this process's bounding set: a
// privileged container can hold no more than the daemon itself.
func BoundingSet() []string {
	var out []string
	last, err := capability.LastCap()
	if err != nil {
		return slices.Clone(DefaultCapabilities)
	}
	for _, c := range capability.List() {
		if c > last {
			continue
		}
		if ok, err := capability.GetBound(c); err == nil && ok {
			out = append(out, capName(c))
		}
	}
	return out
}

func capName(c capability.Cap) string { return "CAP_" + strings.ToUpper(c.String()) }

func knownCap(name string) bool {
	for _, c := range capability.List() {
		if capName(c) == name {
			return true
		}
	}
	return false
}

// normCap accepts "chown", "CHOWN" and "CAP_CHOWN".
func normCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

func bounding(in *ContainerInput) []string {
	if in.Defaults.Bounding != nil {
		return in.Defaults.Bounding
	}
	return BoundingSet()
}

// capabilities computes the set the way containerd does: the defaults; all
// of the bounding set if add has ALL; none if drop has ALL; then the named
// adds, then the named drops. Privileged gets the whole bounding set. The
// ambient capabilities are also added to the set. It returns the set in
// the bounding set's order, and the ambient ones.
func capabilities(in *ContainerInput) (set, ambient []string, err error) {
	const field = "linux.security_context.capabilities"
	sc := in.Config.GetLinux().GetSecurityContext()
	bset := bounding(in)
	caps := sc.GetCapabilities()
	check := func(f string, list []string, mustBound bool) ([]string, bool, error) {
		var out []string
		all := false
		for i, c := range list {
			n := normCap(c)
			switch {
			case n == "ALL":
				all = true
				continue
			case !knownCap(n):
				return nil, false, fieldErr(f+"["+strconv.Itoa(i)+"]", "unknown capability %q", c)
			case mustBound && !slices.Contains(bset, n):
				return nil, false, fieldErr(f+"["+strconv.Itoa(i)+"]", "capability %s is not in the runtime's bounding set", n)
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	adds, addAll, err := check(field+".add_capabilities", caps.GetAddCapabilities(), true)
	if err != nil {
		return nil, nil, err
	}
	drops, dropAll, err := check(field+".drop_capabilities", caps.GetDropCapabilities(), false)
	if err != nil {
		return nil, nil, err
	}
	ambient, ambientAll, err := check(field+".add_ambient_capabilities", caps.GetAddAmbientCapabilities(), true)
	if err != nil {
		return nil, nil, err
	}
	if ambientAll {
		return nil, nil, fieldErr(field+".add_ambient_capabilities", "ALL is not allowed")
	}
	has := map[string]bool{}
	switch {
	case sc.GetPrivileged():
		for _, c := range bset {
			has[c] = true
		}
	default:
		base := in.Defaults.Capabilities
		if base == nil {
			base = DefaultCapabilities
		}
		for _, c := range base {
			has[normCap(c)] = true // a default outside the bounding set is left out below
		}
		if addAll {
			for _, c := range bset {
				has[c] = true
			}
		}
		if dropAll {
			has = map[string]bool{}
		}
		for _, c := range adds {
			has[c] = true
		}
		for _, c := range drops {
			delete(has, c)
		}
	}
	for _, c := range ambient {
		has[c] = true
	}
	for _, c := range bset {
		if has[c] {
			set = append(set, c)
		}
	}
	return set, ambient, nil
}

// setSecurity applies privileged, capabilities, no_new_privs, the
// read-only rootfs, masked and read-only paths, seccomp, AppArmor and
// SELinux.
func setSecurity(g *generate.Generator, in *ContainerInput) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.PodPrivileged {
		return fieldErr("linux.security_context.privileged", "a privileged container needs a privileged pod")
	}
	caps, ambient, err := capabilities(in)
	if err != nil {
		return err
	}
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps,
		Inheritable: ambient, Ambient: ambient,
	}
	g.SetProcessNoNewPrivileges(sc.GetNoNewPrivs())
	g.SetRootReadonly(sc.GetReadonlyRootfs())
	if privileged {
		// All of /proc and a writable /sys, as docker and CRI-O give.
		g.Config.Linux.MaskedPaths = nil
		g.Config.Linux.ReadonlyPaths = nil
		for i, m := range g.Config.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				g.Config.Mounts[i].Options = replaceOpt(m.Options, "ro", "rw")
			}
		}
		return nil // unconfined: no seccomp, AppArmor or SELinux label
	}
	if sc.GetMaskedPaths() != nil {
		g.Config.Linux.MaskedPaths = slices.Clone(sc.GetMaskedPaths())
	}
	if sc.GetReadonlyPaths() != nil {
		g.Config.Linux.ReadonlyPaths = slices.Clone(sc.GetReadonlyPaths())
	}
	if err := setSeccomp(g, in); err != nil {
		return err
	}
	if err := setAppArmor(g, in); err != nil {
		return err
	}
	return setSELinux(g, in)
}

func replaceOpt(opts []string, from, to string) []string {
	out := slices.Clone(opts)
	for i, o := range out {
		if o == from {
			out[i] = to
		}
	}
	return out
}
