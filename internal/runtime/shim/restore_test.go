package shim

import (
	"context"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
)

// restart replaces the env's Runtime by a new one, as a daemon restart
// does: the old one stops serving events and reading output, the shims
// and containers run on.
func (e *env) restart() {
	e.t.Helper()
	if err := e.rt.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.rt = New(context.Background(), "test", e.shim, e.opts)
}

func TestRestoreRunning(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, c := e.run("rr", ctrSpec{sandbox: "rpod", args: []string{"sh", "-c",
			"echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two; exit 5"}}, runtime.CreateOpts{})
		if !eventually(5*time.Second, func() bool { return len(logLines(t, h.LogPath)) >= 1 }) {
			t.Fatal("no output before the restart")
		}
		e.restart()
		if err := e.rt.Restore(ctx(t), h); err != nil {
			t.Fatal(err)
		}
		if _, ok := e.rt.Exited(ctx(t), h); ok {
			t.Fatal("Exited for a running container after the restore")
		}
		if st, err := e.rt.State(ctx(t), "rr"); err != nil || st.Status != "running" || st.Pid != c.Pid {
			t.Fatalf("state after restore: %+v, %v", st, err)
		}
		// A new container joins the restored pod's shim.
		_, c2 := e.run("rr2", ctrSpec{sandbox: "rpod", args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		if c2.Monitor != c.Monitor {
			t.Fatalf("new container of the pod got shim %+v, want %+v", c2.Monitor, c.Monitor)
		}
		if code, err := e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "rr", Bundle: h.Bundle, Args: []string{"touch", "/tmp/go"}}); err != nil || code != 0 {
			t.Fatalf("exec after restore: %d, %v", code, err)
		}
		if x := e.waitExit("rr", 10*time.Second); x.Code != 5 {
			t.Fatalf("exit %+v, want 5", x)
		}
		if !eventually(5*time.Second, func() bool { return slices.Contains(logLines(t, h.LogPath), "stdout F two") }) {
			t.Fatalf("log after restore: %q", logLines(t, h.LogPath))
		}
		if got := logLines(t, h.LogPath); !slices.Equal(got, []string{"stdout F one", "stdout F two"}) {
			t.Fatalf("log %q", got)
		}
		for _, id := range []string{"rr", "rr2"} {
			if err := e.rt.Delete(ctx(t), id); err != nil {
				t.Fatal(err)
			}
		}
		e.assertClean()
	})
}

func TestRestoreExitedMeanwhile(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, c := e.run("rx", ctrSpec{args: []string{"sh", "-c", "sleep 0.5; exit 9"}}, runtime.CreateOpts{})
		e.restart()
		// The container exits while no events server listens.
		if !eventually(10*time.Second, func() bool { return syscall.Kill(c.Pid, 0) == syscall.ESRCH }) {
			t.Fatalf("container %d did not exit", c.Pid)
		}
		if err := e.rt.Restore(ctx(t), h); err != nil {
			t.Fatal(err)
		}
		x, ok := e.rt.Exited(ctx(t), h)
		if !ok || x.Code != 9 || x.Message != "" {
			t.Fatalf("Exited after the restore: %+v, %v", x, ok)
		}
		if err := e.rt.Delete(ctx(t), "rx"); err != nil {
			t.Fatal(err)
		}
		e.assertClean()
	})
}

func TestShimKilled(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, c := e.run("sk", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})
		if err := syscall.Kill(c.Monitor.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var x runtime.Exit
		if !eventually(10*time.Second, func() bool {
			var ok bool
			x, ok = e.rt.Exited(ctx(t), h)
			return ok
		}) {
			t.Fatal("Exited did not conclude the exit of a container whose shim died")
		}
		if x.Code != 137 || !strings.Contains(x.Message, "shim died") {
			t.Fatalf("exit %+v, want 137 and a message", x)
		}
		if runtime.Running(c.Pid) {
			t.Fatal("the container's process survived the shim's delete command")
		}
		if st, err := e.rt.State(ctx(t), "sk"); err != nil || st.Status != "stopped" {
			t.Fatalf("state: %+v, %v", st, err)
		}
		if err := e.rt.Delete(ctx(t), "sk"); err != nil {
			t.Fatal(err)
		}
		e.assertClean()
	})
}

func TestShimKilledWhileDaemonDown(t *testing.T) {
	e := newEnv(t, shim1)
	h, c := e.run("sd", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})
	e.restart()
	if err := syscall.Kill(c.Monitor.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !eventually(5*time.Second, func() bool { return !c.Monitor.Alive() }) {
		t.Fatal("shim survived SIGKILL")
	}
	if err := e.rt.Restore(ctx(t), h); err != nil {
		t.Fatal(err)
	}
	x, ok := e.rt.Exited(ctx(t), h)
	if !ok || x.Code != 137 || !strings.Contains(x.Message, "shim died") {
		t.Fatalf("Exited: %+v, %v", x, ok)
	}
	if runtime.Running(c.Pid) {
		t.Fatal("the container's process survived")
	}
	if err := e.rt.Delete(ctx(t), "sd"); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}
