package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func (d *daemon) networkCondition(t *testing.T) *runtimeapi.RuntimeCondition {
	t.Helper()
	st, err := d.rt.Status(ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.GetStatus().GetConditions() {
		if c.GetType() == runtimeapi.NetworkReady {
			return c
		}
	}
	t.Fatal("no NetworkReady condition")
	return nil
}

// The CNI config directory is watched: without a valid config the network
// is not ready (with a precise reason) and pods fail clearly; once a config
// appears, pods run again.
func TestCNIConfigWatched(t *testing.T) {
	d := newDaemon(t)
	conf := filepath.Join(d.cniDir, "10-itest.conflist")
	saved, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(conf); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if c := d.networkCondition(t); c.GetStatus() || c.GetReason() != "NetworkPluginNotReady" || !strings.Contains(c.GetMessage(), d.cniDir) {
			return "network condition: " + c.String()
		}
		return ""
	})
	_, err = d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "nonet")})
	wantCode(t, "RunPodSandbox without a network", err, codes.FailedPrecondition, "network")
	host := d.podConfig(t, "hostnet-ok")
	host.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	d.runPod(t, host) // hostNetwork pods need no CNI

	if err := os.WriteFile(conf, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		if c := d.networkCondition(t); !c.GetStatus() {
			return "still not ready: " + c.String()
		}
		return ""
	})
	d.runPod(t, d.podConfig(t, "net-again"))
}

// The startup sweep releases what belongs to no known sandbox: here a pod
// whose record vanished while the daemon was down.
func TestStartupSweepReleasesOrphans(t *testing.T) {
	d := newDaemon(t)
	pod := d.runPod(t, d.podConfig(t, "orphan"))
	ip := d.podIP(t, pod)
	d.kill9()
	if err := os.Remove(filepath.Join(d.dir, "root", "records", "sandboxes", pod+".json")); err != nil {
		t.Fatal(err)
	}
	d.start()
	if _, err := os.Stat("/var/run/netns/cradle-" + pod); !os.IsNotExist(err) {
		t.Errorf("orphaned netns pin not released: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.ipamDir, d.network, ip)); !os.IsNotExist(err) {
		t.Errorf("orphaned IP %s not released: %v", ip, err)
	}
	if got := dirEntries(filepath.Join(d.runroot, "pods")); len(got) != 0 {
		t.Errorf("orphaned pod dirs: %v", got)
	}
	if l := d.leaks(); len(l) > 0 {
		t.Errorf("leaks: %v", l)
	}
}

// SIGHUP re-reads the config and applies the log level without a restart.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	d := newDaemon(t)
	setLevel := func(level string) {
		b, err := os.ReadFile(d.cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^log_level = ".*"$`)
		if err := os.WriteFile(d.cfgPath, re.ReplaceAll(b, []byte(`log_level = "`+level+`"`)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() string {
			b, _ := os.ReadFile(d.logPath)
			if !strings.Contains(string(b), `msg="config reloaded" log_level=`+level) {
				return "no reload logged"
			}
			return ""
		})
	}
	debugLines := func() int {
		b, _ := os.ReadFile(d.logPath)
		return strings.Count(string(b), "level=DEBUG")
	}
	setLevel("info")
	before := debugLines()
	d.networkCondition(t) // a request, which logs at debug
	if debugLines() != before {
		t.Error("debug lines were logged at level info")
	}
	setLevel("debug")
	d.networkCondition(t)
	eventually(t, 5*time.Second, func() string {
		if debugLines() == before {
			return "no debug line after switching back to debug"
		}
		return ""
	})
}
