package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// A handler's monitor_env reaches its monitor: conmon runs with it.
func TestHandlerMonitorEnv(t *testing.T) {
	d := newDaemon(t, withConfig(`[runtime.handlers.envrunc]
type = "oci"
path = "/usr/sbin/runc"
monitor_env = ["CRADLE_TEST_MONITOR=42"]
`))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "menv")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "envrunc"})
	if err != nil {
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	var env []byte
	for _, p := range procs() {
		if p.comm == "conmon" && strings.Contains(p.cmdline, "-c "+ctr) {
			if env, err = os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if env == nil {
		t.Fatalf("no conmon for container %s", ctr)
	}
	if !bytes.Contains(env, []byte("\x00CRADLE_TEST_MONITOR=42\x00")) && !bytes.HasPrefix(env, []byte("CRADLE_TEST_MONITOR=42\x00")) {
		t.Errorf("conmon's environment lacks CRADLE_TEST_MONITOR=42")
	}
}

// A handler's allowed_annotations pass the pod annotations they name (or
// prefix) into every spec of the pod, the sandbox's too; others stay out.
func TestHandlerAllowedAnnotations(t *testing.T) {
	d := newDaemon(t, withConfig(`[runtime.handlers.annrunc]
type = "oci"
path = "/usr/sbin/runc"
infra_container = "always"
allowed_annotations = ["cradle.test/*"]
`))
	d.pull(t, busybox)
	d.pull(t, pauseImage)
	cfg := d.podConfig(t, "ann")
	cfg.Annotations = map[string]string{"cradle.test/vcpus": "2", "other.example/x": "no"}
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "annrunc"})
	if err != nil {
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	bundles, err := os.ReadDir(filepath.Join(d.runroot, "containers"))
	if err != nil || len(bundles) != 2 {
		t.Fatalf("bundles: %v %v, want the sandbox's and %s", bundles, err, ctr)
	}
	for _, b := range bundles {
		var spec struct{ Annotations map[string]string }
		data, err := os.ReadFile(filepath.Join(d.runroot, "containers", b.Name(), "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Annotations["cradle.test/vcpus"] != "2" || spec.Annotations["other.example/x"] != "" {
			t.Errorf("spec of %s: annotations %v", b.Name(), spec.Annotations)
		}
	}
}

// SIGUSR1 dumps every goroutine's stack to a file under the runroot, logs
// its path, and the daemon keeps serving.
func TestSIGUSR1DumpsGoroutines(t *testing.T) {
	d := newDaemon(t)
	st, _ := os.Stat(d.logPath)
	if err := d.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`msg="goroutine stacks dumped" path=(\S+)`)
	var path string
	eventually(t, 10*time.Second, func() string {
		b, _ := os.ReadFile(d.logPath)
		if m := re.FindSubmatch(b[st.Size():]); m != nil {
			path = string(m[1])
			return ""
		}
		return "no dump logged yet"
	})
	dump, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(path, filepath.Join(d.runroot, "dumps")+"/") || !bytes.Contains(dump, []byte("goroutine ")) || !bytes.Contains(dump, []byte("dumpOnSIGUSR1")) {
		t.Errorf("dump %s: %d bytes, want the daemon's goroutine stacks", path, len(dump))
	}
	if _, err := d.rt.Version(ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("the daemon stopped serving after SIGUSR1: %v", err)
	}
}

// --config-dir names the drop-in directory: its files apply over --config,
// and the host's /etc/cradle/cradle.d does not.
func TestConfigDirFlag(t *testing.T) {
	dir := t.TempDir()
	cfg, dropins := filepath.Join(dir, "cradle.toml"), filepath.Join(dir, "d")
	if err := os.MkdirAll(dropins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("log_level = \"debug\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropins, "50-warn.toml"), []byte("log_level = \"warn\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cradleBin(t), "config", "--config", cfg, "--config-dir", dropins).CombinedOutput()
	if err != nil {
		t.Fatalf("cradle config: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "\nlog_level = \"warn\"\n") {
		t.Errorf("the drop-in in --config-dir did not apply:\n%s", out)
	}
}

// A handler's runtime_args reach every runtime call: create (through
// conmon) and exec (run directly).
func TestHandlerRuntimeArgs(t *testing.T) {
	dir := t.TempDir()
	record, wrapper := filepath.Join(dir, "args"), filepath.Join(dir, "runc-args")
	script := "#!/bin/sh\necho \"$*\" >> " + record + "\nexec /usr/sbin/runc \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, withConfig(fmt.Sprintf(`[runtime.handlers.argsrunc]
type = "oci"
path = %q
runtime_args = ["--debug"]
`, wrapper)))
	d.pull(t, busybox)
	cfg := d.podConfig(t, "rtargs")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "argsrunc"})
	if err != nil {
		t.Fatal(err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() { d.removePod(t, pod) })
	ctr := d.startContainer(t, pod, cfg, containerConfig("c", "sleep", "1000"))
	if r, err := d.execSync(t, ctr, 10, "true"); err != nil || r.GetExitCode() != 0 {
		t.Fatalf("exec: %v %v", err, r)
	}
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{" create ", " exec "} {
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, sub) && strings.Contains(line, "--debug") {
				found = true
			}
		}
		if !found {
			t.Errorf("no runtime call with%s and --debug in:\n%s", sub, b)
		}
	}
}
