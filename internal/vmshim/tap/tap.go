// Package tap bridges a pod's CNI interface to a microVM: a TAP device
// in the pod's netns, with tc ingress filters (u32 match-all, mirred
// redirect) moving every frame between it and the CNI's eth0 both ways,
// as Kata's tcfilter model does. The guest takes eth0's MAC and
// addresses, so the CNI bridge's ARP and IP allocation still hold.
package tap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"unsafe"

	"github.com/cradle-runtime/cradle/internal/agent/api"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Link is what the guest needs of the pod's interface.
type Link struct {
	Name  string
	MAC   string
	MTU   int
	Addrs []string // CIDR
	// Routes over the interface other than the kernel's prefix routes.
	Routes []api.Route
}

// Network returns the guest's network config for the link.
func (l Link) Network(hostname string) api.Network {
	return api.Network{Hostname: hostname,
		Interfaces: []api.Interface{{MAC: l.MAC, Name: l.Name, Addrs: l.Addrs, MTU: l.MTU}},
		Routes:     l.Routes}
}

// Bridge is a TAP device bridged to a pod's interface.
type Bridge struct {
	NetNS string // the pinned netns path
	Eth   string // the CNI's interface
	Tap   string // the TAP device's name
	// File is the TAP's queue, to hand to qemu (-netdev tap,fd=); the
	// device lives as long as one copy of it is open.
	File *os.File
	Link Link
}

func handleAt(nsPath string) (*netlink.Handle, error) {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	return h, nil
}

// readLink reads eth's MAC, MTU, global addresses and routes.
func readLink(h *netlink.Handle, eth string) (Link, netlink.Link, error) {
	l, err := h.LinkByName(eth)
	if err != nil {
		return Link{}, nil, fmt.Errorf("link %s: %w", eth, err)
	}
	out := Link{Name: eth, MAC: l.Attrs().HardwareAddr.String(), MTU: l.Attrs().MTU}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return Link{}, nil, fmt.Errorf("addresses of %s: %w", eth, err)
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() {
			continue
		}
		out.Addrs = append(out.Addrs, a.IPNet.String())
	}
	routes, err := h.RouteList(l, netlink.FAMILY_ALL)
	if err != nil {
		return Link{}, nil, fmt.Errorf("routes of %s: %w", eth, err)
	}
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL || (r.Dst != nil && r.Dst.IP.IsLinkLocalUnicast()) || r.Table != unix.RT_TABLE_MAIN {
			continue
		}
		ar := api.Route{Iface: eth}
		if r.Dst != nil && !isDefault(r.Dst) {
			ar.Dst = r.Dst.String() // else the default route, as "" says
		}
		if r.Gw != nil {
			ar.Gw = r.Gw.String()
		}
		out.Routes = append(out.Routes, ar)
	}
	return out, l, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0 && n.IP.IsUnspecified()
}

// InNetns runs fn on a thread of its own in the netns at nsPath. The
// thread is thrown away afterwards rather than moved back, so nothing else
// ever runs in the wrong namespace.
func InNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		ns, err := netns.GetFromPath(nsPath)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", nsPath, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// openTap creates a non-persistent TAP device in the netns and returns
// its queue. TUNSETIFF makes the device where the calling thread is, so
// the open runs in the netns (InNetns).
func openTap(nsPath, name string) (*os.File, error) {
	var f *os.File
	err := InNetns(nsPath, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		var ifr [unix.IFNAMSIZ + 64]byte
		copy(ifr[:unix.IFNAMSIZ-1], name)
		*(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ])) = unix.IFF_TAP | unix.IFF_NO_PI
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
			unix.Close(fd)
			return fmt.Errorf("create tap %s: %w", name, e)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	return f, err
}

// Setup creates tap in the pod's netns and redirects all traffic between
// it and eth. Undo with Teardown (closing File alone removes the TAP).
func Setup(nsPath, eth, tapName string) (_ *Bridge, retErr error) {
	h, err := handleAt(nsPath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	info, ethLink, err := readLink(h, eth)
	if err != nil {
		return nil, err
	}
	f, err := openTap(nsPath, tapName)
	if err != nil {
		return nil, err
	}
	b := &Bridge{NetNS: nsPath, Eth: eth, Tap: tapName, File: f, Link: info}
	defer func() {
		if retErr != nil {
			_ = b.Teardown()
		}
	}()
	tapLink, err := h.LinkByName(tapName)
	if err != nil {
		return nil, fmt.Errorf("tap %s: %w", tapName, err)
	}
	if err := h.LinkSetMTU(tapLink, info.MTU); err != nil {
		return nil, fmt.Errorf("mtu of %s: %w", tapName, err)
	}
	if err := h.LinkSetUp(tapLink); err != nil {
		return nil, fmt.Errorf("up %s: %w", tapName, err)
	}
	if err := redirect(h, ethLink, tapLink); err != nil {
		return nil, err
	}
	if err := redirect(h, tapLink, ethLink); err != nil {
		return nil, err
	}
	return b, nil
}

// redirect sends every frame arriving on from out of to.
func redirect(h *netlink.Handle, from, to netlink.Link) error {
	idx := from.Attrs().Index
	q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
	if err := h.QdiscAdd(q); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("ingress qdisc on %s: %w", from.Attrs().Name, err)
	}
	f := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: idx, Parent: netlink.MakeHandle(0xffff, 0), Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(to.Attrs().Index)},
	}
	if err := h.FilterAdd(f); err != nil {
		return fmt.Errorf("redirect %s to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}

// Teardown removes the filters (with eth's ingress qdisc) and closes the
// TAP's queue; the TAP goes once qemu, too, has closed its copy.
func (b *Bridge) Teardown() error {
	if b.File != nil {
		b.File.Close()
		b.File = nil
	}
	return Remove(b.NetNS, b.Eth, b.Tap)
}

// Remove undoes Setup by names, for a shim that did not make the bridge
// (a restart); a netns or link already gone is no error.
func Remove(nsPath, eth, tapName string) error {
	if _, err := os.Stat(nsPath); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	h, err := handleAt(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	var errs []error
	for _, name := range []string{eth, tapName} {
		l, err := h.LinkByName(name)
		if err != nil {
			continue
		}
		q := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
		if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("remove ingress qdisc of %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
