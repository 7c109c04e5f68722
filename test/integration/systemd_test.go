package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With NOTIFY_SOCKET set, as systemd sets it for a Type=notify unit, the
// daemon sends READY=1 once its CRI socket answers and STOPPING=1 when
// SIGTERM starts the shutdown. The variable does not reach conmon or runc,
// which would otherwise hand the socket to the containers.
func TestSystemdNotify(t *testing.T) {
	requireRoot(t)
	sockPath := filepath.Join(t.TempDir(), "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	next := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = ln.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	d := newDaemon(t, withEnv("NOTIFY_SOCKET="+sockPath))
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	// READY=1 promised a serving socket: a CRI call answers.
	d.networkCondition(t)

	d.pull(t, busybox)
	podCfg := d.podConfig(t, "sdnotify")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("sleeper", "sleep", "600"))
	if st := d.containerStatus(t, ctr).GetState().String(); st != "CONTAINER_RUNNING" {
		t.Fatalf("container state %s", st)
	}
	out, err := exec.Command("pgrep", "-f", "conmon.*"+d.runroot).Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) == 0 {
		t.Fatalf("no conmon found for the container: %v", err)
	}
	for _, pid := range pids {
		env, err := os.ReadFile(filepath.Join("/proc", pid, "environ"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(env), "NOTIFY_SOCKET=") {
			t.Errorf("conmon %s inherited NOTIFY_SOCKET", pid)
		}
	}
	d.removePod(t, pod)

	d.stop()
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
}
