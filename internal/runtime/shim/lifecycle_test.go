package shim

import (
	"errors"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestLifecycle(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, c := e.create("life", ctrSpec{args: []string{"sh", "-c", "echo hello; echo oops >&2; printf tail; exit 3"}}, runtime.CreateOpts{})
		if c.Pid <= 0 || !c.Monitor.Alive() {
			t.Fatalf("created %+v: want a task pid and a live shim", c)
		}
		st, err := e.rt.State(ctx(t), "life")
		if err != nil || st.Status != "created" || st.Pid != c.Pid {
			t.Fatalf("state before start: %+v, %v", st, err)
		}
		if _, ok := e.rt.Exited(ctx(t), h); ok {
			t.Fatal("Exited before start")
		}
		if err := e.rt.Start(ctx(t), "life"); err != nil {
			t.Fatal(err)
		}
		x := e.waitExit("life", 10*time.Second)
		if x.Code != 3 || x.OOMKilled || x.Finished.IsZero() || time.Since(x.Finished) > time.Minute {
			t.Fatalf("exit %+v, want code 3", x)
		}
		if st, err := e.rt.State(ctx(t), "life"); err != nil || st.Status != "stopped" {
			t.Fatalf("state after exit: %+v, %v", st, err)
		}
		if got, ok := e.rt.Exited(ctx(t), h); !ok || got.Code != 3 {
			t.Fatalf("Exited: %+v %v", got, ok)
		}
		want := []string{"stdout F hello", "stderr F oops", "stdout P tail"}
		if !eventually(5*time.Second, func() bool { return len(logLines(t, h.LogPath)) >= 3 }) {
			t.Fatalf("log: %q", logLines(t, h.LogPath))
		}
		got := logLines(t, h.LogPath)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("log records %q, want %q", got, want)
		}
		bs, err := readBootstrap(h.Bundle)
		wantAPI := 3 // 2.x shims serve task API v3 only
		if shim == shim1 {
			wantAPI = 2
		}
		if err != nil || bs.Address == "" || bs.Protocol != "ttrpc" || bs.Version != wantAPI {
			t.Fatalf("bootstrap.json: %+v, %v; want task API %d", bs, err, wantAPI)
		}
		if err := e.rt.Delete(ctx(t), "life"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.rt.State(ctx(t), "life"); !errors.Is(err, runtime.ErrNotExist) {
			t.Fatalf("state after delete: %v", err)
		}
		if err := e.rt.Delete(ctx(t), "life"); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if pids := e.waitNoShims(3 * time.Second); len(pids) > 0 {
			t.Fatalf("shim still runs after the last delete: %v", pids)
		}
		for _, f := range []string{bootstrapFile, ioFile, "stdout", "stderr", "log"} {
			if _, err := os.Stat(h.Bundle.File(f)); err == nil {
				t.Errorf("%s left in the bundle", f)
			}
		}
		e.assertClean()
	})
}

func TestPodSharesOneShim(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		_, sb := e.run("pod", ctrSpec{sandbox: "pod", args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		_, app := e.run("app", ctrSpec{sandbox: "pod", args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		if sb.Monitor != app.Monitor {
			t.Fatalf("pod containers got shims %+v and %+v", sb.Monitor, app.Monitor)
		}
		if pids := e.shimPids(); len(pids) != 1 || pids[0] != sb.Monitor.Pid {
			t.Fatalf("shim processes %v, want just %d", pids, sb.Monitor.Pid)
		}
		other, solo := e.run("solo", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		if solo.Monitor == sb.Monitor {
			t.Fatal("a container of another pod joined the pod's shim")
		}
		for _, id := range []string{"app", "solo"} {
			if err := e.rt.Kill(ctx(t), id, syscall.SIGKILL, true); err != nil {
				t.Fatal(err)
			}
			if x := e.waitExit(id, 10*time.Second); x.Code != 137 {
				t.Fatalf("%s exit %+v", id, x)
			}
			if err := e.rt.Delete(ctx(t), id); err != nil {
				t.Fatal(err)
			}
		}
		if !sb.Monitor.Alive() {
			t.Fatal("the pod's shim exited with the sandbox still in it")
		}
		if !eventually(3*time.Second, func() bool { return !solo.Monitor.Alive() }) {
			t.Fatal("the other pod's shim outlived its only container")
		}
		if _, err := os.Stat(e.socketFor(other.ID)); err == nil {
			t.Fatal("the other pod's shim socket is left")
		}
		// Delete of a running task kills it first.
		if err := e.rt.Delete(ctx(t), "pod"); err != nil {
			t.Fatal(err)
		}
		if !eventually(3*time.Second, func() bool { return !sb.Monitor.Alive() }) {
			t.Fatal("the pod's shim outlived the pod")
		}
		e.assertClean()
	})
}

func TestKill(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("k", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		if st, err := e.rt.State(ctx(t), "k"); err != nil || st.Status != "running" {
			t.Fatalf("state: %+v, %v", st, err)
		}
		if err := e.rt.Kill(ctx(t), "k", syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		if x := e.waitExit("k", 10*time.Second); x.Code != 137 || x.OOMKilled || x.Message != "" {
			t.Fatalf("exit %+v, want 137", x)
		}
		if err := e.rt.Kill(ctx(t), "k", syscall.SIGKILL, false); err == nil {
			t.Log("kill of an exited task succeeded") // the 1.6 shim says NotFound, others may not
		}
		if err := e.rt.Delete(ctx(t), h.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.rt.Kill(ctx(t), "k", syscall.SIGKILL, false); !errors.Is(err, runtime.ErrNotExist) {
			t.Fatalf("kill after delete: %v", err)
		}
		e.assertClean()
	})
}

func TestUpdate(t *testing.T) {
	e := newEnv(t, shim1)
	e.run("u", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})
	limit := int64(64 << 20)
	if err := e.rt.Update(ctx(t), "u", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("/sys/fs/cgroup/memory/" + e.cgParent + "/u/memory.limit_in_bytes")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "67108864" {
		t.Fatalf("memory limit %s after Update", got)
	}
}

func TestOOMKilled(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("oom", ctrSpec{memLimit: 16 << 20,
			args: []string{"sh", "-c", "echo start; exec dd if=/dev/zero of=/dev/null bs=64M count=1"}}, runtime.CreateOpts{})
		x := e.waitExit("oom", 20*time.Second)
		if x.Code != 137 || !x.OOMKilled {
			t.Fatalf("exit %+v, want 137 and OOMKilled", x)
		}
		if !h.Bundle.OOMKilled() {
			t.Fatal("no oom file in the bundle")
		}
	})
}
