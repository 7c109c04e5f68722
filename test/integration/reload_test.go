package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dropin writes (or, with content "", removes) a drop-in config file.
func (d *daemon) dropin(t *testing.T, name, content string) {
	t.Helper()
	dir := filepath.Join(d.dir, "cradle.d")
	p := filepath.Join(dir, name)
	if content == "" {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload sends SIGHUP and waits until the daemon logs the reload's end
// (one more "config reloaded" line, or a failed reload); it returns the
// log written meanwhile.
func (d *daemon) reload(t *testing.T) string {
	t.Helper()
	before, _ := os.ReadFile(d.logPath)
	n := strings.Count(string(before), `msg="config reloaded"`) + strings.Count(string(before), `msg="config reload failed`)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var since string
	eventually(t, 30*time.Second, func() string {
		b, _ := os.ReadFile(d.logPath)
		if strings.Count(string(b), `msg="config reloaded"`)+strings.Count(string(b), `msg="config reload failed`) > n {
			since = string(b[len(before):])
			return ""
		}
		return "no reload logged"
	})
	return since
}

func (d *daemon) handlerNames(t *testing.T) []string {
	t.Helper()
	st, err := d.rt.Status(ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range st.GetRuntimeHandlers() {
		out = append(out, h.GetName())
	}
	return out
}

// A handler added to the config serves new pods after SIGHUP; once removed,
// it refuses new pods with FailedPrecondition while its pod keeps working.
func TestSIGHUPReloadsHandlers(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	// Readers of the handler set run throughout, so that a race detector
	// build of the daemon (CRADLE_BIN) sees reloads meet requests.
	stop, polled, c := make(chan struct{}), make(chan error, 1), ctx(t)
	go func() {
		var err error
		for err == nil {
			select {
			case <-stop:
				polled <- nil
				return
			default:
			}
			_, err = d.rt.Status(c, &runtimeapi.StatusRequest{Verbose: true})
		}
		polled <- err
	}()
	defer func() {
		close(stop)
		if err := <-polled; err != nil {
			t.Errorf("Status during reloads: %v", err)
		}
	}()
	if slicesContain(d.handlerNames(t), "extra") {
		t.Fatal("handler extra before it was configured")
	}
	d.dropin(t, "50-extra.toml", "[runtime.handlers.extra]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="runtime handler added" handler=extra`) ||
		!strings.Contains(log, `msg="config changed" key=runtime.handlers.extra`) {
		t.Fatalf("no handler change logged:\n%s", log)
	}
	if !slicesContain(d.handlerNames(t), "extra") {
		t.Fatalf("Status does not list the added handler: %v", d.handlerNames(t))
	}
	podCfg := d.podConfig(t, "extra")
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "extra"})
	if err != nil {
		t.Fatalf("RunPodSandbox with the added handler: %v", err)
	}
	pod := resp.GetPodSandboxId()
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removePod(t, pod)
		}
	})
	ctr := d.startContainer(t, pod, podCfg, containerConfig("sleeper", "sleep", "600"))

	d.dropin(t, "50-extra.toml", "")
	if log := d.reload(t); !strings.Contains(log, `msg="runtime handler retired: running pods keep it, new pods are refused" handler=extra`) {
		t.Fatalf("no retirement logged:\n%s", log)
	}
	if slicesContain(d.handlerNames(t), "extra") {
		t.Fatalf("Status still lists the removed handler: %v", d.handlerNames(t))
	}
	_, err = d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: d.podConfig(t, "refused"), RuntimeHandler: "extra"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), `runtime_handler: handler "extra" was removed`) {
		t.Fatalf("RunPodSandbox with a removed handler: %v, want FailedPrecondition naming it", err)
	}
	// The existing pod keeps its runtime: exec, then stop and remove.
	out, err := d.rt.ExecSync(ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: ctr, Cmd: []string{"echo", "still here"}, Timeout: 30})
	if err != nil || strings.TrimSpace(string(out.GetStdout())) != "still here" {
		t.Fatalf("exec in the retired handler's container: %v %q", err, out.GetStdout())
	}
	d.removePod(t, pod)

	// Back again, with the same definition: new pods are served again.
	d.dropin(t, "50-extra.toml", "[runtime.handlers.extra]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="runtime handler restored" handler=extra`) {
		t.Fatalf("no restore logged:\n%s", log)
	}
	pod2 := d.runPodWith(t, d.podConfig(t, "back"), "extra")
	d.removePod(t, pod2)
}

// runPodWith runs a pod with a runtime handler; cleanup removes it.
func (d *daemon) runPodWith(t *testing.T, cfg *runtimeapi.PodSandboxConfig, handler string) string {
	t.Helper()
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		d.dumpLog()
		t.Fatalf("RunPodSandbox (handler %s): %v", handler, err)
	}
	return resp.GetPodSandboxId()
}

// Keys that cannot change in a running daemon are named in a warning and
// keep their running value; a changed handler definition is one of them.
func TestSIGHUPWarnsNonReloadable(t *testing.T) {
	d := newDaemon(t)
	d.dropin(t, "50-restart.toml", "[stats]\ncollection_period = \"20s\"\n\n[runtime.handlers.runc]\nruntime_args = [\"--debug\"]\n\n[nri]\nplugin_request_timeout = \"3s\"\n")
	log := d.reload(t)
	for _, want := range []string{
		`level=WARN msg="config change needs a restart; keeping the running value" key=stats.collection_period running=10s configured=20s`,
		`level=WARN msg="config change needs a restart; keeping the running value" key=runtime.handlers.runc.runtime_args`,
		`msg="config changed" key=nri.plugin_request_timeout old=2s new=3s`,
		`msg="config reloaded" log_level=debug changed=1 need_restart=2`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("reload log lacks %q:\n%s", want, log)
		}
	}
}

// A reload whose applied part contradicts a kept key is refused whole:
// removing the default handler while default_handler (which needs a
// restart) moves elsewhere.
func TestSIGHUPRefusesConflictingReload(t *testing.T) {
	alt := "[runtime.handlers.alt]\ntype = \"oci\"\npath = \"/usr/sbin/runc\"\n"
	d := newDaemon(t, withConfig(alt), withDefaultHandler("alt"))
	cfg := strings.Replace(readFile(t, d.cfgPath), alt, "", 1)
	cfg = strings.Replace(cfg, `default_handler = "alt"`, `default_handler = "runc"`, 1)
	if err := os.WriteFile(d.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if log := d.reload(t); !strings.Contains(log, `msg="config reload failed; keeping the running config"`) || !strings.Contains(log, "runtime.default_handler") {
		t.Fatalf("reload removing the running default handler was not refused:\n%s", log)
	}
	if !slicesContain(d.handlerNames(t), "alt") {
		t.Fatalf("the default handler went away: %v", d.handlerNames(t))
	}
	d.pull(t, busybox)
	d.removePod(t, d.runPodWith(t, d.podConfig(t, "alt"), ""))
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func slicesContain(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// registries.conf is parsed again on SIGHUP, at a new path and at the same
// one; the signature policy path and the pause image follow the config.
func TestSIGHUPReloadsImageSettings(t *testing.T) {
	d := newDaemon(t, withConfig(pausedHandler))
	d.pull(t, busybox)
	orig := readFile(t, filepath.Join(repoRoot(), "test", "images", "registries.conf"))
	blocked := strings.Replace(orig, "prefix = \"registry.k8s.io\"\nlocation = \"127.0.0.1:5000\"\n", "prefix = \"registry.k8s.io\"\nlocation = \"127.0.0.1:5000\"\nblocked = true\n", 1)
	if blocked == orig {
		t.Fatal("test registries.conf has no registry.k8s.io entry to block")
	}
	regs := filepath.Join(d.dir, "registries.conf")
	if err := os.WriteFile(regs, []byte(blocked), 0o644); err != nil {
		t.Fatal(err)
	}
	pullErr := func() error {
		_, err := d.img.PullImage(ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
		return err
	}

	d.dropin(t, "50-registries.toml", "[image]\nregistries_conf = \""+regs+"\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=image.registries_conf`) {
		t.Fatalf("no registries_conf change logged:\n%s", log)
	}
	if err := pullErr(); err == nil || !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("pull from a blocked registry: %v", err)
	}
	// Same path, new content: read again, not served from the cache.
	if err := os.WriteFile(regs, []byte(orig), 0o644); err != nil {
		t.Fatal(err)
	}
	d.reload(t)
	if err := pullErr(); err != nil {
		t.Fatalf("pull after unblocking in place: %v", err)
	}

	reject := filepath.Join(d.dir, "reject.json")
	if err := os.WriteFile(reject, []byte(`{"default": [{"type": "reject"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d.dropin(t, "60-policy.toml", "[image]\nsignature_policy = \""+reject+"\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=image.signature_policy`) {
		t.Fatalf("no signature_policy change logged:\n%s", log)
	}
	if err := pullErr(); err == nil {
		t.Fatal("pull allowed by a reject-all policy")
	}
	d.dropin(t, "60-policy.toml", "")
	d.reload(t)
	if err := pullErr(); err != nil {
		t.Fatalf("pull after the policy was reset: %v", err)
	}

	// The pause image, under another name for the same registry: pods
	// that need an infra process after the reload pull and run it, and it
	// is the pinned one.
	newPause := "127.0.0.1:5000/pause:3.10"
	imageStatus := func(ref string) *runtimeapi.Image {
		st, err := d.img.ImageStatus(ctx(t), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetImage()
	}
	if imageStatus(newPause) != nil {
		t.Fatalf("%s present before the test pulled it", newPause)
	}
	// Pinned follows the setting, also for an image looked up before.
	if imageStatus(busybox).GetPinned() {
		t.Fatal("busybox pinned before it was the pause image")
	}
	d.dropin(t, "70-pause.toml", "[image]\npause_image = \""+busybox+"\"\n")
	d.reload(t)
	if !imageStatus(busybox).GetPinned() {
		t.Fatal("busybox is not pinned as the pause image")
	}
	d.dropin(t, "70-pause.toml", "[image]\npause_image = \""+newPause+"\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=image.pause_image old=`+busybox+` new=`+newPause) {
		t.Fatalf("no pause_image change logged:\n%s", log)
	}
	podCfg := d.podConfig(t, "newpause")
	// A handler with a pause container: shared-PID pods of the default one
	// have a PID holder instead.
	resp, err := d.rt.RunPodSandbox(ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podCfg, RuntimeHandler: "paused"})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	pod := resp.GetPodSandboxId()
	img := imageStatus(newPause)
	if img == nil || !img.GetPinned() {
		t.Fatalf("the new pause image after a shared-PID pod ran: %v", img)
	}
	if imageStatus(busybox).GetPinned() {
		t.Fatal("busybox is still pinned after the pause image changed again")
	}
	d.removePod(t, pod)
}

// runtime.seccomp_profile is the RuntimeDefault profile, read again on each
// SIGHUP: a container created after the reload gets the file's new content.
func TestSIGHUPReloadsSeccompProfile(t *testing.T) {
	d := newDaemon(t)
	d.pull(t, busybox)
	profile := filepath.Join(d.dir, "seccomp.json")
	write := func(body string) {
		if err := os.WriteFile(profile, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	denyMkdir := `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}`
	write(denyMkdir)
	podCfg := d.podConfig(t, "seccomp")
	pod := d.runPod(t, podCfg)
	try := func(name string) string {
		c := containerConfig(name, "sh", "-c", "mkdir /tmp/dir && echo made || echo denied")
		c.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		d.startContainer(t, pod, podCfg, c)
		return logOf(t, filepath.Join(podCfg.LogDirectory, name+".log"), "e")
	}
	if got := try("builtin"); !strings.Contains(got, "made") {
		t.Fatalf("the built-in default profile denied mkdir: %q", got)
	}
	d.dropin(t, "50-seccomp.toml", "[runtime]\nseccomp_profile = \""+profile+"\"\n")
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=runtime.seccomp_profile`) {
		t.Fatalf("no seccomp_profile change logged:\n%s", log)
	}
	if got := try("denied"); !strings.Contains(got, "denied") {
		t.Fatalf("the configured profile did not deny mkdir: %q", got)
	}
	// Same path, new content.
	write(`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}`)
	if log := d.reload(t); !strings.Contains(log, `msg="config changed" key=runtime.seccomp_profile content=`) {
		t.Fatalf("no re-read profile logged:\n%s", log)
	}
	if got := try("allowed"); !strings.Contains(got, "made") {
		t.Fatalf("the re-read profile still denies mkdir: %q", got)
	}
	// A broken file fails the reload and keeps the profile in force.
	write(`{"defaultAction": `)
	if log := d.reload(t); !strings.Contains(log, `msg="config reload failed; keeping the running config"`) || !strings.Contains(log, "runtime.seccomp_profile") {
		t.Fatalf("a broken profile did not fail the reload:\n%s", log)
	}
	if got := try("kept"); !strings.Contains(got, "made") {
		t.Fatalf("the failed reload changed the profile: %q", got)
	}
}
