package oci

import (
	"os"
	"strings"

	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultCapabilities is the usual container set (docker's and CRI-O's).
var DefaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths and DefaultReadonlyPaths match the kubelet's defaults.
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
		return DefaultCapabilities
	}
	for _, c := range capability.List() {
		if c > last {
			continue
		}
		if ok, err := capability.GetBound(c); err == nil && ok {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}

func knownCap(name string) bool {
	for _, c := range capability.List() {
		if "CAP_"+strings.ToUpper(c.String()) == name {
			return true
		}
	}
	return false
}

func normCap(c string) string {
	c = strings.ToUpper(c)
	if c == "ALL" || strings.HasPrefix(c, "CAP_") {
		return c
	}
	return "CAP_" + c
}

// capabilities computes the set from defaults plus add minus drop.
func capabilities(in *ContainerInput) ([]string, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	if sc.GetPrivileged() {
		return in.Defaults.Bounding, nil
	}
	set := map[string]bool{}
	base := in.Defaults.Capabilities
	if base == nil {
		base = DefaultCapabilities
	}
	for _, c := range base {
		set[normCap(c)] = true
	}
	caps := sc.GetCapabilities()
	for i, c := range caps.GetAddCapabilities() {
		n := normCap(c)
		if n == "ALL" {
			for _, b := range in.Defaults.Bounding {
				set[b] = true
			}
			continue
		}
		if !knownCap(n) {
			return nil, fieldErr("linux.security_context.capabilities.add_capabilities["+itoa(i)+"]", "unknown capability %q", c)
		}
		set[n] = true
	}
	for i, c := range caps.GetDropCapabilities() {
		n := normCap(c)
		if n == "ALL" {
			set = map[string]bool{}
			// Adds still apply after drop ALL, as in the kubelet's semantics.
			for _, a := range caps.GetAddCapabilities() {
				if an := normCap(a); an != "ALL" {
					set[an] = true
				}
			}
			continue
		}
		if !knownCap(n) {
			return nil, fieldErr("linux.security_context.capabilities.drop_capabilities["+itoa(i)+"]", "unknown capability %q", c)
		}
		delete(set, n)
	}
	for i, c := range caps.GetAddAmbientCapabilities() {
		if !knownCap(normCap(c)) {
			return nil, fieldErr("linux.security_context.capabilities.add_ambient_capabilities["+itoa(i)+"]", "unknown capability %q", c)
		}
	}
	out := make([]string, 0, len(set))
	for _, b := range in.Defaults.Bounding {
		if set[b] {
			out = append(out, b)
			delete(set, b)
		}
	}
	for c := range set { // known but outside the bounding set: runc will refuse, so say so
		return nil, fieldErr("linux.security_context.capabilities", "capability %s is not in the runtime's bounding set", c)
	}
	return out, nil
}

func setSecurity(g *generate.Generator, in *ContainerInput) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	if privileged && !in.PodPrivileged {
		return fieldErr("linux.security_context.privileged", "a privileged container needs a privileged pod")
	}
	caps, err := capabilities(in)
	if err != nil {
		return err
	}
	g.Config.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps,
	}
	for _, c := range sc.GetCapabilities().GetAddAmbientCapabilities() {
		n := normCap(c)
		g.Config.Process.Capabilities.Ambient = append(g.Config.Process.Capabilities.Ambient, n)
		g.Config.Process.Capabilities.Inheritable = append(g.Config.Process.Capabilities.Inheritable, n)
	}
	g.SetProcessNoNewPrivileges(sc.GetNoNewPrivs())

	if privileged {
		g.Config.Linux.MaskedPaths = nil
		g.Config.Linux.ReadonlyPaths = nil
		g.Config.Linux.Seccomp = nil
		g.SetProcessApparmorProfile("")
		return nil
	}
	g.Config.Linux.MaskedPaths = append([]string(nil), DefaultMaskedPaths...)
	g.Config.Linux.ReadonlyPaths = append([]string(nil), DefaultReadonlyPaths...)
	if sc.GetMaskedPaths() != nil {
		g.Config.Linux.MaskedPaths = sc.GetMaskedPaths()
	}
	if sc.GetReadonlyPaths() != nil {
		g.Config.Linux.ReadonlyPaths = sc.GetReadonlyPaths()
	}
	if err := setSeccomp(g, sc); err != nil {
		return err
	}
	return setAppArmor(g, sc)
}

// setSeccomp applies the profile; the deprecated path string is honoured
// when the structured field is absent.
func setSeccomp(g *generate.Generator, sc *runtimeapi.LinuxContainerSecurityContext) error {
	prof := sc.GetSeccomp()
	typ, ref := runtimeapi.SecurityProfile_Unconfined, ""
	switch {
	case prof != nil:
		typ, ref = prof.GetProfileType(), prof.GetLocalhostRef()
	case sc.GetSeccompProfilePath() != "":
		p := sc.GetSeccompProfilePath()
		switch {
		case p == "runtime/default" || p == "docker/default":
			typ = runtimeapi.SecurityProfile_RuntimeDefault
		case p == "unconfined":
		case strings.HasPrefix(p, "localhost/"):
			typ, ref = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(p, "localhost/")
		default:
			return fieldErr("linux.security_context.seccomp_profile_path", "unknown profile %q", p)
		}
	}
	switch typ {
	case runtimeapi.SecurityProfile_Unconfined:
		g.Config.Linux.Seccomp = nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		s, err := seccomp.GetDefaultProfile(g.Config)
		if err != nil {
			return fieldErr("linux.security_context.seccomp", "default profile: %v", err)
		}
		g.Config.Linux.Seccomp = s
	case runtimeapi.SecurityProfile_Localhost:
		body, err := os.ReadFile(ref)
		if err != nil {
			return fieldErr("linux.security_context.seccomp.localhost_ref", "%v", err)
		}
		s, err := seccomp.LoadProfile(string(body), g.Config)
		if err != nil {
			return fieldErr("linux.security_context.seccomp.localhost_ref", "profile %s: %v", ref, err)
		}
		g.Config.Linux.Seccomp = s
	}
	return nil
}

// AppArmorEnabled reports whether the host enforces AppArmor.
func AppArmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func setAppArmor(g *generate.Generator, sc *runtimeapi.LinuxContainerSecurityContext) error {
	prof := sc.GetApparmor()
	typ, ref := runtimeapi.SecurityProfile_RuntimeDefault, ""
	if prof != nil {
		typ, ref = prof.GetProfileType(), prof.GetLocalhostRef()
	} else if p := sc.GetApparmorProfile(); p != "" {
		switch {
		case p == "runtime/default":
		case p == "unconfined":
			typ = runtimeapi.SecurityProfile_Unconfined
		case strings.HasPrefix(p, "localhost/"):
			typ, ref = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(p, "localhost/")
		default:
			return fieldErr("linux.security_context.apparmor_profile", "unknown profile %q", p)
		}
	} else if !AppArmorEnabled() {
		return nil
	}
	if typ == runtimeapi.SecurityProfile_Unconfined {
		g.SetProcessApparmorProfile("")
		return nil
	}
	if !AppArmorEnabled() {
		if typ == runtimeapi.SecurityProfile_RuntimeDefault {
			return nil // nothing to apply; the default is "whatever the host enforces"
		}
		return fieldErr("linux.security_context.apparmor", "profile %q requested but AppArmor is not enabled on this host", ref)
	}
	if typ == runtimeapi.SecurityProfile_Localhost {
		g.SetProcessApparmorProfile(ref)
		return nil
	}
	g.SetProcessApparmorProfile("cradle-default")
	return nil
}
