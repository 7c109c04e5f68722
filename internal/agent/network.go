package agent

import (
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/cradle-runtime/cradle/internal/agent/api"
	"github.com/vishvananda/netlink"
)

func linkUp(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	return netlink.LinkSetUp(l)
}

// setupNetwork gives the guest's NICs (found by MAC) the pod's names,
// addresses and routes, and sets the hostname.
func setupNetwork(n api.Network) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, want := range n.Interfaces {
		mac, err := net.ParseMAC(want.MAC)
		if err != nil {
			return fmt.Errorf("interface mac %q: %w", want.MAC, err)
		}
		var l netlink.Link
		for _, c := range links {
			if c.Attrs().HardwareAddr.String() == mac.String() {
				l = c
			}
		}
		if l == nil {
			return fmt.Errorf("no guest NIC has mac %s", mac)
		}
		if want.Name != "" && l.Attrs().Name != want.Name {
			if err := netlink.LinkSetName(l, want.Name); err != nil {
				return fmt.Errorf("rename %s to %s: %w", l.Attrs().Name, want.Name, err)
			}
		}
		if want.MTU > 0 {
			if err := netlink.LinkSetMTU(l, want.MTU); err != nil {
				return fmt.Errorf("mtu of %s: %w", want.Name, err)
			}
		}
		for _, a := range want.Addrs {
			addr, err := netlink.ParseAddr(a)
			if err != nil {
				return fmt.Errorf("interface address %q: %w", a, err)
			}
			if err := netlink.AddrReplace(l, addr); err != nil {
				return fmt.Errorf("address %s on %s: %w", a, want.Name, err)
			}
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return fmt.Errorf("up %s: %w", want.Name, err)
		}
	}
	for _, r := range n.Routes {
		l, err := netlink.LinkByName(r.Iface)
		if err != nil {
			return fmt.Errorf("route %+v: %w", r, err)
		}
		route := netlink.Route{LinkIndex: l.Attrs().Index}
		if r.Dst != "" {
			if _, dst, err := net.ParseCIDR(r.Dst); err != nil {
				return fmt.Errorf("route dst %q: %w", r.Dst, err)
			} else {
				route.Dst = dst
			}
		}
		if r.Gw != "" {
			if route.Gw = net.ParseIP(r.Gw); route.Gw == nil {
				return fmt.Errorf("route gw %q is not an IP", r.Gw)
			}
		}
		if err := netlink.RouteReplace(&route); err != nil {
			return fmt.Errorf("route %+v: %w", r, err)
		}
	}
	if h := strings.TrimSpace(n.Hostname); h != "" {
		if err := os.WriteFile("/proc/sys/kernel/hostname", []byte(h), 0o644); err != nil {
			return fmt.Errorf("hostname: %w", err)
		}
	}
	return nil
}
