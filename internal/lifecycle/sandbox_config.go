package lifecycle

import (
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podIDMaps returns the pod's user namespace mappings: none for the host's
// user namespace, one range each for a pod-wide one. Per-container and
// target user namespaces are not supported.
func podIDMaps(cfg *runtimeapi.PodSandboxConfig) (uids, gids []netns.IDMap, err error) {
	u := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetUsernsOptions()
	if u == nil {
		return nil, nil, nil // no options: the host's, as before user namespaces existed
	}
	switch u.GetMode() {
	case runtimeapi.NamespaceMode_NODE:
		return nil, nil, nil
	case runtimeapi.NamespaceMode_POD:
	default:
		return nil, nil, crierr.Invalid("config.linux.security_context.namespace_options.userns_options.mode", "%v is not supported; use POD or NODE", u.GetMode())
	}
	conv := func(in []*runtimeapi.IDMapping) []netns.IDMap {
		out := make([]netns.IDMap, 0, len(in))
		for _, m := range in {
			out = append(out, netns.IDMap{ContainerID: m.GetContainerId(), HostID: m.GetHostId(), Size: m.GetLength()})
		}
		return out
	}
	uids, gids = conv(u.GetUids()), conv(u.GetGids())
	if err := netns.ValidateIDMaps(uids, gids); err != nil {
		return nil, nil, crierr.Invalid("config.linux.security_context.namespace_options.userns_options", "%v", err)
	}
	return uids, gids, nil
}

func hostname(cfg *runtimeapi.PodSandboxConfig) string {
	if sandbox.HostNetwork(cfg) {
		h, _ := os.Hostname()
		return h
	}
	if cfg.GetHostname() != "" {
		return cfg.GetHostname()
	}
	return truncateHostname(cfg.GetMetadata().GetName())
}

// truncateHostname shortens a pod name to a valid hostname (at most 63
// bytes, not ending in '-' or '.'), as the kubelet does for pod hostnames.
func truncateHostname(name string) string {
	const max = 63
	if len(name) <= max {
		return name
	}
	return strings.TrimRight(name[:max], "-.")
}

func (m *Manager) podNetwork(r sandbox.Record) *network.Pod {
	md := r.Config.GetMetadata()
	p := &network.Pod{ID: r.ID, Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid(), NetNS: r.NetNS}
	for _, pm := range r.Config.GetPortMappings() {
		if pm.GetHostPort() <= 0 {
			continue
		}
		proto := "tcp"
		switch pm.GetProtocol() {
		case runtimeapi.Protocol_UDP:
			proto = "udp"
		case runtimeapi.Protocol_SCTP:
			proto = "sctp"
		}
		p.PortMappings = append(p.PortMappings, network.PortMapping{HostPort: pm.GetHostPort(), ContainerPort: pm.GetContainerPort(), Protocol: proto, HostIP: pm.GetHostIp()})
	}
	p.Bandwidth = bandwidth(r.Config.GetAnnotations())
	return p
}

// bandwidth reads the kubelet's traffic-shaping annotations for the
// bandwidth plugin (bits per second, Kubernetes quantities).
func bandwidth(ann map[string]string) *network.Bandwidth {
	in, okIn := parseQuantity(ann["kubernetes.io/ingress-bandwidth"])
	out, okOut := parseQuantity(ann["kubernetes.io/egress-bandwidth"])
	if !okIn && !okOut {
		return nil
	}
	// Burst as the kubelet's kubenet did: effectively unlimited.
	const burst = math.MaxInt32
	b := &network.Bandwidth{}
	if okIn {
		b.IngressRate, b.IngressBurst = in, burst
	}
	if okOut {
		b.EgressRate, b.EgressBurst = out, burst
	}
	return b
}

// parseQuantity understands the decimal and binary suffixes the bandwidth
// annotations use ("10M", "1Gi", "500k").
func parseQuantity(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	mult := uint64(1)
	for _, suf := range []struct {
		s string
		m uint64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}} {
		if strings.HasSuffix(s, suf.s) {
			s, mult = strings.TrimSuffix(s, suf.s), suf.m
			break
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false
	}
	return v * mult, true
}
