package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// sandboxRecorder writes a runc wrapper that, at the sandbox's create,
// records the netns path in its spec, that path's filesystem type and the
// addresses on eth0 inside it. It returns the wrapper and the record.
func sandboxRecorder(t *testing.T) (wrapper, record string) {
	t.Helper()
	dir := t.TempDir()
	record = filepath.Join(dir, "seen")
	wrapper = filepath.Join(dir, "runc-wrapper")
	script := `#!/bin/sh
# At the sandbox's create, record the netns path's filesystem type and eth0.
bundle=""; prev=""; create=0
for a in "$@"; do
  [ "$a" = create ] && create=1
  [ "$prev" = --bundle ] && bundle=$a
  prev=$a
done
if [ $create = 1 ] && grep -q '"io.kubernetes.cri.container-type": "sandbox"' "$bundle/config.json"; then
  ns=$(tr -d ' \n' < "$bundle/config.json" | grep -o '"type":"network","path":"[^"]*"' | sed 's/.*"path":"\([^"]*\)"/\1/')
  { echo "netns=$ns"; echo "fstype=$(stat -f -c %T "$ns")"
    echo "eth0=$(nsenter --net="$ns" ip -4 -o addr show eth0 | awk '{print $4}')"; } > ` + record + `
fi
exec /usr/sbin/runc "$@"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, record
}

// assertSandboxFirst checks what sandboxRecorder saw at the sandbox's
// create: the pinned netns, already an nsfs mount, with the pod IP on eth0.
func (d *daemon) assertSandboxFirst(t *testing.T, pod, record string) {
	t.Helper()
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("the wrapper saw no sandbox create: %v", err)
	}
	seen := string(b)
	ip := d.podIP(t, pod)
	if !strings.Contains(seen, "netns=/var/run/netns/cradle-"+pod+"\n") {
		t.Errorf("config.json netns path: %s", seen)
	}
	if !strings.Contains(seen, "fstype=nsfs\n") {
		t.Errorf("netns was not an nsfs mount at create: %s", seen)
	}
	if ip == "" || !strings.Contains(seen, "eth0="+ip+"/") {
		t.Errorf("eth0 did not hold the pod IP %q at create: %s", ip, seen)
	}
}

// The sandbox is created in the runtime only after its namespace is pinned
// and networked: a wrapper runtime records what it sees at `create`.
func TestSandboxCreatedAfterNetworkIsReady(t *testing.T) {
	wrapper, record := sandboxRecorder(t)
	d := newDaemon(t, withConfig(fmt.Sprintf(`[runtime.handlers.wrapped]
type = "oci"
path = "%s"
infra_container = "always"
`, wrapper)))
	d.pull(t, pauseImage)
	cfg := d.podConfig(t, "first-ns")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "wrapped"})
	if err != nil {
		d.dumpLog()
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	d.assertSandboxFirst(t, pod, record)
}

// A failing CNI ADD fails RunPodSandbox and leaks nothing; a failing DEL
// fails Stop until it works again, and then nothing leaks.
func TestCNIFailures(t *testing.T) {
	d := newDaemon(t)
	d.cniControl("fail-ADD", true)
	if _, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "failadd")}); err == nil || !strings.Contains(err.Error(), "told to fail ADD") {
		t.Fatalf("RunPodSandbox with a failing ADD: %v", err)
	}
	if l := d.leaks(); len(l) > 0 {
		t.Fatalf("leaks after failed ADD: %v", l)
	}
	d.cniControl("fail-ADD", false)

	pod := d.runPod(t, d.podConfig(t, "faildel"))
	d.cniControl("fail-DEL", true)
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err == nil {
		t.Fatal("StopPodSandbox succeeded although DEL failed")
	}
	d.cniControl("fail-DEL", false)
	d.removePod(t, pod)
	if l := d.leaks(); len(l) > 0 {
		t.Fatalf("leaks after DEL recovered: %v", l)
	}
}

// kill -9 at each step of RunPodSandbox (and while a plugin hangs), then
// restart: nothing stays allocated, and the kubelet's retry works.
func TestCrashDuringRunPodSandbox(t *testing.T) {
	for _, fp := range []string{"run:after-record", "run:after-pin", "run:after-cni", "run:after-infra", "hang-ADD"} {
		t.Run(fp, func(t *testing.T) {
			var d *daemon
			if fp == "hang-ADD" {
				d = newDaemon(t)
				d.cniControl("hang-ADD", true)
			} else {
				d = newDaemon(t, withEnv("CRADLE_TEST_FAILPOINTS="+fp))
			}
			cfg := d.podConfig(t, "crash")
			if fp == "run:after-infra" {
				// With a PID holder running when the daemon dies.
				cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
			}
			errc := make(chan error, 1)
			go func() {
				_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
				errc <- err
			}()
			if fp == "hang-ADD" {
				eventually(t, 10*time.Second, func() string {
					if contains(d.cniCalls(), "ADD") {
						return ""
					}
					return "ADD not called yet"
				})
				d.kill9()
				d.cniControl("hang-ADD", false)
			} else {
				d.waitCrash(30 * time.Second)
			}
			if err := <-errc; err == nil {
				t.Fatal("RunPodSandbox succeeded across a crash")
			}
			if fp == "run:after-infra" && len(d.holderPids()) != 1 {
				t.Fatalf("no pid holder running at the crash: %v", d.holderPids())
			}
			d.env = nil // restart without the failpoint
			d.start()
			list, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range list.GetItems() {
				d.removePod(t, p.GetId())
			}
			if l := d.leaks(); len(l) > 0 {
				t.Fatalf("leaks after crash at %s and restart: %v", fp, l)
			}
			// The kubelet's retry with the same metadata gets a working pod.
			pod := d.runPod(t, cfg)
			if d.podIP(t, pod) == "" {
				t.Error("retried pod has no IP")
			}
			d.removePod(t, pod)
		})
	}
}

// kill -9 during StopPodSandbox (a hanging DEL), restart, Stop and Remove.
func TestCrashDuringStopPodSandbox(t *testing.T) {
	d := newDaemon(t)
	pod := d.runPod(t, d.podConfig(t, "stopcrash"))
	d.cniControl("hang-DEL", true)
	errc := make(chan error, 1)
	go func() {
		_, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod})
		errc <- err
	}()
	eventually(t, 10*time.Second, func() string {
		if contains(d.cniCalls(), "DEL "+pod) {
			return ""
		}
		return "DEL not called yet"
	})
	d.kill9()
	<-errc
	d.cniControl("hang-DEL", false)
	d.start()
	d.removePod(t, pod)
	if l := d.leaks(); len(l) > 0 {
		t.Fatalf("leaks: %v", l)
	}
}

// The netns vanishes behind cradle's back: Stop and Remove still succeed,
// DEL is still called (with an empty netns), and nothing leaks.
func TestNetnsRemovedFromOutside(t *testing.T) {
	d := newDaemon(t)
	pod := d.runPod(t, d.podConfig(t, "gone"))
	pin := "/var/run/netns/cradle-" + pod
	if err := syscall.Unmount(pin, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pin); err != nil {
		t.Fatal(err)
	}
	d.removePod(t, pod)
	found := false
	for _, c := range d.cniCalls() {
		if strings.HasPrefix(c, "DEL "+pod) {
			found = true
			if strings.TrimSpace(c) != "DEL "+pod {
				t.Errorf("DEL got a netns path for a vanished namespace: %q", c)
			}
		}
	}
	if !found {
		t.Error("CNI DEL was not called")
	}
	if l := d.leaks(); len(l) > 0 {
		t.Fatalf("leaks: %v", l)
	}
}

func TestHostNetworkPod(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "hostnet")
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	pod := d.runPod(t, cfg)
	if _, err := os.Stat("/var/run/netns/cradle-" + pod); !os.IsNotExist(err) {
		t.Errorf("hostNetwork pod has a netns pin: %v", err)
	}
	if ip := d.podIP(t, pod); ip != "" {
		t.Errorf("hostNetwork pod reports IP %q from CNI", ip)
	}
	hostNS, _ := os.Readlink("/proc/self/ns/net")
	out := d.runLogged(t, pod, cfg, "ns", "net:", "readlink", "/proc/self/ns/net")
	if strings.TrimSpace(out) != hostNS {
		t.Errorf("container netns %q, host's %q", out, hostNS)
	}
	for _, c := range d.cniCalls() {
		if strings.Contains(c, pod) {
			t.Errorf("CNI was called for a hostNetwork pod: %s", c)
		}
	}
}

// DNS config and sysctls are visible inside the pod.
func TestPodDNSAndSysctls(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "dns")
	cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"ns.svc.cluster.local", "svc.cluster.local"}, Options: []string{"ndots:5"}}
	cfg.Linux.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "1025", "kernel.shm_rmid_forced": "1"}
	pod := d.runPod(t, cfg)
	out := d.runLogged(t, pod, cfg, "resolv", "ndots", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.0.0.10", "search ns.svc.cluster.local svc.cluster.local", "options ndots:5"} {
		if !strings.Contains(out, want) {
			t.Errorf("resolv.conf lacks %q: %s", want, out)
		}
	}
	out = d.runLogged(t, pod, cfg, "sysctl", "end", "sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shm_rmid_forced; hostname; echo end")
	if f := strings.Fields(out); len(f) < 3 || f[0] != "1025" || f[1] != "1" || f[2] != "dns" {
		t.Errorf("inside the pod: %q, want 1025, 1, dns", out)
	}
}

// A hostPort is reachable on 127.0.0.1 and on the host's own address.
func TestHostPort(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "hostport")
	hostPort := int32(20000 + os.Getpid()%10000)
	cfg.PortMappings = []*runtimeapi.PortMapping{{Protocol: runtimeapi.Protocol_TCP, ContainerPort: 80, HostPort: hostPort}}
	pod := d.runPod(t, cfg)
	d.startContainer(t, pod, cfg, containerConfig("web", "sh", "-c", "mkdir -p /www && echo hello-port > /www/index.html && exec httpd -f -p 80 -h /www"))
	addrs := []string{"127.0.0.1"}
	if a := hostAddress(); a != "" {
		addrs = append(addrs, a)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, a := range addrs {
		url := fmt.Sprintf("http://%s/index.html", net.JoinHostPort(a, fmt.Sprint(hostPort)))
		eventually(t, 15*time.Second, func() string {
			resp, err := client.Get(url)
			if err != nil {
				return err.Error()
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(b), "hello-port") {
				return "unexpected body " + string(b)
			}
			return ""
		})
	}
	d.removePod(t, pod)
	// The portmap rules are gone with the pod.
	if out, _ := exec.Command("sh", "-c", fmt.Sprintf("iptables-save -t nat | grep -c 'dport %d' || true", hostPort)).Output(); strings.TrimSpace(string(out)) != "0" {
		t.Errorf("portmap rules for %d remain: %s", hostPort, out)
	}
}

// hostAddress is the host's first global IPv4 address outside test bridges.
func hostAddress() string {
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "cit") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return ""
}

// A retry while the first RunPodSandbox is still running waits for it and
// gets the same sandbox, never a "name reserved" error.
func TestRunPodSandboxRetryWhileInFlight(t *testing.T) {
	d := newDaemon(t)
	cfg := d.podConfig(t, "inflight")
	d.cniControl("hang-ADD", true)
	ids := make(chan string, 2)
	errs := make(chan error, 2)
	run := func() {
		resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
		errs <- err
		ids <- resp.GetPodSandboxId()
	}
	// The retry comes once the first attempt hangs in CNI ADD.
	go run()
	eventually(t, 10*time.Second, func() string {
		if contains(d.cniCalls(), "ADD") {
			return ""
		}
		return "ADD not called yet"
	})
	go run()
	d.waitLog(t, `msg="RunPodSandbox retry waits for the first attempt"`)
	d.cniControl("hang-ADD", false)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("RunPodSandbox #%d: %v", i+1, err)
		}
	}
	a, b := <-ids, <-ids
	if a == "" || a != b {
		t.Fatalf("first and retry got %q and %q", a, b)
	}
	adds := 0
	for _, c := range d.cniCalls() {
		if strings.HasPrefix(c, "ADD ") {
			adds++
		}
	}
	if adds != 1 {
		t.Errorf("CNI ADD ran %d times for one pod", adds)
	}
	d.removePod(t, a)
}

// SIGTERM lets a request in flight finish within the grace period, leaves
// containers running, and exits 0.
func TestSIGTERMFinishesRequestsInFlight(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	cfg := d.podConfig(t, "graceful")
	pod := d.runPod(t, cfg)
	ctr := d.startContainer(t, pod, cfg, containerConfig("keeps", "sleep", "1000"))
	d.cniControl("hang-ADD", true)
	errc := make(chan error, 1)
	go func() {
		_, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "late")})
		errc <- err
	}()
	eventually(t, 10*time.Second, func() string {
		for _, c := range d.cniCalls() {
			if strings.HasPrefix(c, "ADD ") && !strings.Contains(c, pod) {
				return ""
			}
		}
		return "second ADD not called yet"
	})
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitLog(t, `msg="draining requests in flight"`)
	d.cniControl("hang-ADD", false)
	if err := <-errc; err != nil {
		t.Errorf("the request in flight failed across SIGTERM: %v", err)
	}
	if err := d.cmd.Wait(); err != nil {
		t.Errorf("daemon exit after SIGTERM: %v", err)
	}
	d.cmd = nil
	d.conn.Close()
	d.start()
	if st := d.containerStatus(t, ctr); st.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("container is %v after a clean daemon stop", st.GetState())
	}
	list, err := d.rt.ListPodSandbox(ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.GetItems() {
		d.removePod(t, p.GetId())
	}
}
