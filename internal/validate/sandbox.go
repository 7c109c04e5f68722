package validate

import (
	"fmt"
	"net/netip"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandbox checks a RunPodSandbox config. Sysctls and user namespace
// mappings are checked by their owners (netns), which know the kernel's
// rules for them.
func PodSandbox(c *runtimeapi.PodSandboxConfig) error {
	if c == nil {
		return errf("config", "is required")
	}
	m := c.GetMetadata()
	if m == nil {
		return errf("config.metadata", "is required")
	}
	for _, f := range []struct{ field, v string }{
		{"config.metadata.name", m.GetName()},
		{"config.metadata.namespace", m.GetNamespace()},
		{"config.metadata.uid", m.GetUid()},
	} {
		if err := name(f.field, f.v, true); err != nil {
			return err
		}
	}
	if err := hostname("config.hostname", c.GetHostname()); err != nil {
		return err
	}
	if d := c.GetLogDirectory(); d != "" {
		if err := absPath("config.log_directory", d); err != nil {
			return err
		}
	}
	if err := dns("config.dns_config", c.GetDnsConfig()); err != nil {
		return err
	}
	for i, p := range c.GetPortMappings() {
		if err := port(fmt.Sprintf("config.port_mappings[%d]", i), p); err != nil {
			return err
		}
	}
	if err := labels(c.GetLabels(), c.GetAnnotations()); err != nil {
		return err
	}
	l := c.GetLinux()
	if err := CgroupParent("config.linux.cgroup_parent", l.GetCgroupParent()); err != nil {
		return err
	}
	if err := Resources("config.linux.resources", l.GetResources()); err != nil {
		return err
	}
	if err := Resources("config.linux.overhead", l.GetOverhead()); err != nil {
		return err
	}
	return seccomp("config.linux.security_context.seccomp", l.GetSecurityContext().GetSeccomp())
}

// hostname is what the kernel and /etc/hosts get: at most a DNS label's
// length, and nothing that would break the hosts file's lines.
func hostname(field, h string) error {
	if len(h) > MaxHostname {
		return errf(field, "is %d bytes long; the limit is %d", len(h), MaxHostname)
	}
	if strings.ContainsAny(h, " \t/") {
		return errf(field, "%q has a space or a slash", h)
	}
	return printable(field, h)
}

// dns checks what becomes the pod's resolv.conf, against the limits the
// kubelet and glibc have.
func dns(field string, d *runtimeapi.DNSConfig) error {
	if d == nil {
		return nil
	}
	if n := len(d.GetServers()); n > MaxNameservers {
		return errf(field+".servers", "has %d servers; the limit is %d", n, MaxNameservers)
	}
	for i, s := range d.GetServers() {
		if _, err := netip.ParseAddr(s); err != nil {
			return errf(fmt.Sprintf("%s.servers[%d]", field, i), "%q is not an IP address", s)
		}
	}
	if n := len(d.GetSearches()); n > MaxSearches {
		return errf(field+".searches", "has %d domains; the limit is %d", n, MaxSearches)
	}
	if n := len(strings.Join(d.GetSearches(), " ")); n > MaxSearchChars {
		return errf(field+".searches", "is %d characters long; the limit is %d", n, MaxSearchChars)
	}
	for i, s := range d.GetSearches() {
		if err := word(fmt.Sprintf("%s.searches[%d]", field, i), s); err != nil {
			return err
		}
	}
	for i, o := range d.GetOptions() {
		if err := word(fmt.Sprintf("%s.options[%d]", field, i), o); err != nil {
			return err
		}
	}
	return nil
}

// word is one resolv.conf token: a space or newline would add another.
func word(field, s string) error {
	if s == "" || strings.ContainsAny(s, " \t") {
		return errf(field, "%q is not a single word", s)
	}
	return printable(field, s)
}

func port(field string, p *runtimeapi.PortMapping) error {
	if p == nil {
		return errf(field, "is null")
	}
	switch hp, cp := p.GetHostPort(), p.GetContainerPort(); {
	case hp < 0 || hp > 65535:
		return errf(field+".host_port", "%d is not a port (0 for none, or 1-65535)", hp)
	case cp < 0 || cp > 65535:
		return errf(field+".container_port", "%d is not a port (1-65535)", cp)
	case hp > 0 && cp == 0:
		return errf(field+".container_port", "is 0, but host_port %d maps to it", hp)
	}
	if _, ok := runtimeapi.Protocol_name[int32(p.GetProtocol())]; !ok {
		return errf(field+".protocol", "%d is not TCP, UDP or SCTP", p.GetProtocol())
	}
	if ip := p.GetHostIp(); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return errf(field+".host_ip", "%q is not an IP address", ip)
		}
	}
	return nil
}

// CgroupParent checks a pod's cgroup parent: ".." would climb out of the
// hierarchy (a path join cleans it away silently, up to the root) and leave
// cgroups there.
func CgroupParent(field, p string) error {
	if hasDotDot(p) {
		return errf(field, "%q has a \"..\" segment: a cgroup parent may not leave the hierarchy", p)
	}
	return printable(field, p)
}

// seccomp checks a localhost profile's path early; the profile itself is
// read when the container's spec is built.
func seccomp(field string, p *runtimeapi.SecurityProfile) error {
	if p.GetProfileType() != runtimeapi.SecurityProfile_Localhost {
		return nil
	}
	return absPath(field+".localhost_ref", p.GetLocalhostRef())
}
