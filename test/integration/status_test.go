package integration

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cradle status asks the running daemon over its socket and shows the
// config in force, the handlers (a retired one too) and the pods and
// containers with their states.
func TestStatusCommand(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	podCfg := d.podConfig(t, "status")
	pod := d.runPod(t, podCfg)
	ctr := d.startContainer(t, pod, podCfg, containerConfig("sleeper", "sleep", "600"))
	// A handler added, then removed: retired while nothing uses it is
	// still shown so, until a restart.
	d.dropin(t, "50-extra.toml", "[runtime.handlers.extra]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n")
	d.reload(t)
	d.dropin(t, "50-extra.toml", "")
	d.reload(t)

	status := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(cradleBin(t), append([]string{"status", "--socket", "unix://" + d.sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("cradle status %v: %v\n%s", args, err, out)
		}
		return out
	}
	var r struct {
		Socket     string
		Version    string
		Conditions []struct {
			Type   string
			Status bool
		}
		Handlers []struct {
			Name, Type, Path string
			Default, Retired bool
		}
		Pods []struct {
			ID, Name, Namespace, State, Handler string
			Containers                          []struct{ ID, Name, State, Image string }
		}
		Config map[string]any
	}
	if err := json.Unmarshal(status("-o", "json"), &r); err != nil {
		t.Fatal(err)
	}
	if r.Socket != "unix://"+d.sock || r.Version == "" || len(r.Conditions) != 2 || !r.Conditions[0].Status || !r.Conditions[1].Status {
		t.Errorf("daemon part: %+v", r)
	}
	if r.Config["listen"] != "unix://"+d.sock || r.Config["log_level"] != "debug" ||
		r.Config["runtime"].(map[string]any)["default_handler"] != "runc" {
		t.Errorf("config in force: %v", r.Config)
	}
	handlers := map[string]string{}
	for _, h := range r.Handlers {
		switch {
		case h.Retired:
			handlers[h.Name] = "retired"
		case h.Default:
			handlers[h.Name] = "default " + h.Type + " " + h.Path
		default:
			handlers[h.Name] = "active"
		}
	}
	if handlers["runc"] != "default oci /usr/sbin/runc" || handlers["extra"] != "retired" {
		t.Errorf("handlers: %v", handlers)
	}
	if len(r.Pods) != 1 || r.Pods[0].ID != pod || r.Pods[0].Name != "status" || r.Pods[0].Namespace != "itest" ||
		r.Pods[0].State != "SANDBOX_READY" || r.Pods[0].Handler != "runc" {
		t.Fatalf("pods: %+v", r.Pods)
	}
	if cs := r.Pods[0].Containers; len(cs) != 1 || cs[0].ID != ctr || cs[0].Name != "sleeper" || cs[0].State != "CONTAINER_RUNNING" {
		t.Fatalf("containers: %+v", cs)
	}

	text := string(status())
	t.Logf("cradle status:\n%s", text)
	for _, want := range []string{"POD ID", pod[:13], "SANDBOX_READY", ctr[:13], "sleeper", "CONTAINER_RUNNING", "extra", "retired", `listen = "unix://` + d.sock + `"`} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}

	// The states follow the daemon: a stopped pod is NOTREADY, its
	// container EXITED; a removed pod is gone.
	if _, err := d.rt.StopPodSandbox(ctx(t), &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	r.Pods = nil
	if err := json.Unmarshal(status("-o", "json"), &r); err != nil || len(r.Pods) != 1 || r.Pods[0].State != "SANDBOX_NOTREADY" ||
		len(r.Pods[0].Containers) != 1 || r.Pods[0].Containers[0].State != "CONTAINER_EXITED" {
		t.Fatalf("after the pod was stopped: %v %+v", err, r.Pods)
	}
	d.removePod(t, pod)
	r.Pods = nil
	if err := json.Unmarshal(status("-o", "json"), &r); err != nil || len(r.Pods) != 0 {
		t.Fatalf("after the pod was removed: %v %+v", err, r.Pods)
	}
	if out, err := exec.Command(cradleBin(t), "status", "--socket", d.sock, "-o", "yaml").CombinedOutput(); err == nil || !strings.Contains(string(out), "-o") {
		t.Errorf("-o yaml: %v %s", err, out)
	}
}
