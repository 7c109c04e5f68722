package vm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/agent/api"
	"github.com/cradle-runtime/cradle/internal/vmshim/guest"
	"github.com/cradle-runtime/cradle/internal/vmshim/qemu"
	"github.com/cradle-runtime/cradle/internal/vmshim/tap"
	"golang.org/x/sys/unix"
)

// needVM skips unless this host can boot a pod VM: root, qemu, a kernel
// with 9p modules, busybox-static.
func needVM(t *testing.T) (kernel, release string) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath(qemu.Binary); err != nil {
		t.Skip("needs qemu-system-x86 (hack/install-vm-deps.sh)")
	}
	k, rel, err := guest.FindKernel("/boot", "/lib/modules")
	if err != nil {
		t.Skipf("needs linux-image-amd64 (hack/install-vm-deps.sh): %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs busybox-static")
	}
	return k, rel
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// buildAgent builds cradle-vm-agent, static, into dir.
func buildAgent(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "cradle-vm-agent")
	cmd := exec.Command("go", "build", "-o", out, "github.com/cradle-runtime/cradle/cmd/cradle-vm-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v: %s", err, b)
	}
	return out
}

// TestBootNetwork boots a VM from the agent's initramfs in a netns whose
// eth0 is a veth to a client netns, and reaches an httpd in the guest
// over veth and the mirrored TAP; Shutdown leaves no qemu, TAP, filter
// or state behind.
func TestBootNetwork(t *testing.T) {
	kernel, release := needVM(t)
	dir := t.TempDir()
	img, err := guest.Build(guest.Config{Agent: buildAgent(t, dir), Runtime: "/usr/sbin/runc", KernelRelease: release,
		CacheDir: filepath.Join(dir, "cache"), Extra: map[string]string{"/bin/busybox": "/bin/busybox"}})
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	pod, client := "cvm-pod-"+suffix, "cvm-cli-"+suffix
	for _, ns := range []string{pod, client} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "-n", pod, "link", "add", "eth0", "type", "veth", "peer", "name", "veth0", "netns", client)
	run(t, "ip", "-n", pod, "addr", "add", "10.213.0.2/24", "dev", "eth0")
	run(t, "ip", "-n", pod, "link", "set", "eth0", "up")
	run(t, "ip", "-n", pod, "route", "add", "default", "via", "10.213.0.1")
	run(t, "ip", "-n", client, "addr", "add", "10.213.0.1/24", "dev", "veth0")
	run(t, "ip", "-n", client, "link", "set", "veth0", "up")

	ctx := context.Background()
	state := filepath.Join(dir, "vm")
	v, err := Boot(ctx, Options{Name: "test", Kernel: kernel, Initrd: img, Accel: "tcg", MemoryMiB: 256,
		StateDir: state, NetNS: "/run/netns/" + pod, Hostname: "guest"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = v.Shutdown(ctx, 10*time.Second)
		}
	})
	var u unix.Utsname
	_ = unix.Uname(&u)
	host := unix.ByteSliceToString(u.Release[:])
	t.Logf("guest kernel %s, host kernel %s, timing %+v", v.Kernel, host, v.Timing)
	if v.Kernel != release || v.Kernel == host {
		t.Fatalf("guest kernel %q, want %q (host %q)", v.Kernel, release, host)
	}

	var st api.StartReply
	sh := "/bin/busybox mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html && exec /bin/busybox httpd -f -p 8080 -h /tmp/www"
	if err := v.Agent.Call(ctx, api.MStart, api.StartRequest{ExecID: "httpd", Args: []string{"/bin/busybox", "sh", "-c", sh}}, &st); err != nil {
		t.Fatal(err)
	}
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, err := httpGetIn("/run/netns/"+client, "http://10.213.0.2:8080/")
		if err == nil {
			body = out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET from the client netns: %v (console: %s)\n%s", err, v.consoleTail(), netDiag(ctx, v, pod, client))
		}
	}
	if strings.TrimSpace(body) != "hello-from-guest" {
		t.Fatalf("GET: %q", body)
	}
	t.Logf("GET http://10.213.0.2:8080/ from the client netns: %q", strings.TrimSpace(body))

	pid := v.Pid()
	stopped = true
	if err := v.Shutdown(ctx, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(pid, 0); err == nil {
		t.Errorf("qemu %d still runs", pid)
	}
	if out, err := exec.Command("ip", "-n", pod, "link", "show", TapName).CombinedOutput(); err == nil {
		t.Errorf("tap left: %s", out)
	}
	if out := run(t, "tc", "-n", pod, "qdisc", "show", "dev", "eth0"); strings.Contains(out, "ingress") {
		t.Errorf("ingress qdisc left on eth0: %s", out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
}

// httpGetIn GETs url from the netns: the socket is made on a thread in
// it, which is thrown away afterwards.
func httpGetIn(nsPath, url string) (string, error) {
	var body string
	err := tap.InNetns(nsPath, func() error {
		conn, err := net.DialTimeout("tcp", strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), 2*time.Second)
		if err != nil {
			return err
		}
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		resp, err := cl.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = string(b)
		return err
	})
	return body, err
}

// netDiag gathers, for a failed probe, both sides' links, filters and
// neighbours, and the guest's own view from busybox over the agent.
func netDiag(ctx context.Context, v *VM, pod, client string) string {
	var b strings.Builder
	for _, c := range [][]string{
		{"ip", "-n", pod, "-s", "link"}, {"tc", "-n", pod, "-s", "filter", "show", "dev", "eth0", "ingress"},
		{"tc", "-n", pod, "-s", "filter", "show", "dev", TapName, "ingress"}, {"ip", "-n", client, "neigh"},
		{"ip", "-n", client, "-s", "link"},
	} {
		out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		fmt.Fprintf(&b, "$ %s\n%s\n", strings.Join(c, " "), out)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sh := "for c in 'ip addr' 'ip route' 'ip neigh' 'cat /proc/net/dev' 'cat /proc/net/snmp'; do echo \"# $c\"; /bin/busybox $c; done 2>&1"
	if err := v.Agent.Call(cctx, api.MStart, api.StartRequest{ExecID: "diag", Args: []string{"/bin/busybox", "sh", "-c", sh}}, &api.StartReply{}); err != nil {
		fmt.Fprintf(&b, "guest diag: %v\n", err)
		return b.String()
	}
	b.WriteString("guest:\n")
	for {
		var r api.ReadOutputReply
		if err := v.Agent.Call(cctx, api.MReadOutput, api.ReadOutputRequest{ProcessRef: api.ProcessRef{ExecID: "diag"}, Stream: "stdout"}, &r); err != nil {
			fmt.Fprintf(&b, "guest diag output: %v\n", err)
			break
		}
		b.Write(r.Data)
		if r.EOF {
			break
		}
	}
	return b.String()
}
