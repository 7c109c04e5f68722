package tap

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestSetupRemove bridges a TAP to a veth in a netns of its own: the
// link's MAC, address and default route are read, both redirects exist,
// and Teardown leaves neither the TAP nor a filter.
func TestSetupRemove(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	ns := fmt.Sprintf("cvm-tap-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "add", "eth0", "address", "02:11:22:33:44:55", "type", "veth", "peer", "name", "peer0")
	run(t, "ip", "-n", ns, "addr", "add", "10.214.0.2/24", "dev", "eth0")
	run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", ns, "link", "set", "peer0", "up")
	run(t, "ip", "-n", ns, "route", "add", "default", "via", "10.214.0.1")
	path := "/run/netns/" + ns

	b, err := Setup(path, "eth0", "tap0")
	if err != nil {
		t.Fatal(err)
	}
	l := b.Link
	if l.MAC != "02:11:22:33:44:55" || len(l.Addrs) != 1 || l.Addrs[0] != "10.214.0.2/24" ||
		len(l.Routes) != 1 || l.Routes[0].Gw != "10.214.0.1" || l.Routes[0].Dst != "" {
		t.Errorf("link: %+v", l)
	}
	for dev, to := range map[string]string{"eth0": "tap0", "tap0": "eth0"} {
		out := run(t, "tc", "-n", ns, "filter", "show", "dev", dev, "ingress")
		if !strings.Contains(out, "u32") || !strings.Contains(out, "Redirect to device "+to) {
			t.Errorf("%s ingress filters lack a redirect to %s:\n%s", dev, to, out)
		}
	}
	if err := b.Teardown(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "show", "tap0").CombinedOutput(); err == nil {
		t.Errorf("tap0 left: %s", out)
	}
	if out := run(t, "tc", "-n", ns, "qdisc", "show", "dev", "eth0"); strings.Contains(out, "ingress") {
		t.Errorf("ingress qdisc left on eth0: %s", out)
	}
	if err := Remove(path, "eth0", "tap0"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if err := Remove("/run/netns/nonexistent-cvm", "eth0", "tap0"); err != nil {
		t.Errorf("Remove in a gone netns: %v", err)
	}
}
