package stats

import (
	"fmt"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// DefaultInterface is the pod interface that CNI plugins create and that
// the kubelet reports on its own.
const DefaultInterface = "eth0"

// ReadNetNS returns the counters of every interface but loopback in the
// network namespace pinned at path, sorted by name. A netlink handle bound
// to the namespace is used instead of switching a thread into it.
func ReadNetNS(path string) ([]Interface, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links in %s: %w", path, err)
	}
	var out []Interface
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagLoopback != 0 {
			continue
		}
		i := Interface{Name: a.Name}
		if st := a.Statistics; st != nil {
			i.RxBytes, i.RxErrors, i.RxPackets, i.RxDropped = st.RxBytes, st.RxErrors, st.RxPackets, st.RxDropped
			i.TxBytes, i.TxErrors, i.TxPackets, i.TxDropped = st.TxBytes, st.TxErrors, st.TxPackets, st.TxDropped
		}
		out = append(out, i)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
