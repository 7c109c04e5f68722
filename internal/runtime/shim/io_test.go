package shim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
)

// syncBuffer is a bytes.Buffer safe for the copier and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExec(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("ex", ctrSpec{args: []string{"sleep", "600"}}, runtime.CreateOpts{})

		var out, errs bytes.Buffer
		code, err := e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "ex", Bundle: h.Bundle,
			Args: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, Stdout: &out, Stderr: &errs})
		if err != nil || code != 7 || out.String() != "out\n" || errs.String() != "err\n" {
			t.Fatalf("exec: code %d, err %v, stdout %q, stderr %q", code, err, out.String(), errs.String())
		}

		out.Reset()
		code, err = e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "ex", Bundle: h.Bundle, Args: []string{"cat"},
			Stdin: strings.NewReader("via stdin\n"), Stdout: &out})
		if err != nil || code != 0 || out.String() != "via stdin\n" {
			t.Fatalf("exec with stdin: code %d, err %v, stdout %q", code, err, out.String())
		}

		out.Reset()
		sizes := make(chan runtime.TermSize, 1)
		sizes <- runtime.TermSize{Width: 100, Height: 40}
		code, err = e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "ex", Bundle: h.Bundle, Tty: true, Resize: sizes,
			Args: []string{"stty", "size"}, Stdout: &out})
		if err != nil || code != 0 || strings.TrimSpace(out.String()) != "40 100" {
			t.Fatalf("tty exec: code %d, err %v, output %q", code, err, out.String())
		}
		// Sizes later on resize the pty: one is sent once the process
		// runs (past the first-size wait), and each line typed asks for
		// the size again until the new one shows.
		var live syncBuffer
		sizes = make(chan runtime.TermSize, 1)
		stdin, typed := io.Pipe()
		execDone := make(chan struct{})
		go func() {
			defer close(execDone)
			code, err = e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "ex", Bundle: h.Bundle, Tty: true, Resize: sizes, Stdin: stdin,
				Args: []string{"sh", "-c", "echo ready; while read x; do [ \"$x\" = q ] && exit 0; stty size; done"}, Stdout: &live})
		}()
		if !eventually(5*time.Second, func() bool { return strings.Contains(live.String(), "ready") }) {
			t.Fatalf("tty exec did not start: %q", live.String())
		}
		sizes <- runtime.TermSize{Width: 120, Height: 30}
		resized := eventually(5*time.Second, func() bool {
			_, _ = typed.Write([]byte("\n"))
			return strings.Contains(live.String(), "30 120")
		})
		// Closing a terminal's input would hang the shell up: it is told to go.
		_, _ = typed.Write([]byte("q\n"))
		<-execDone
		typed.Close()
		if !resized || err != nil || code != 0 {
			t.Fatalf("tty exec resized: code %d, err %v, output %q", code, err, live.String())
		}

		start := time.Now()
		code, err = e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "ex", Bundle: h.Bundle, Args: []string{"sleep", "60"},
			Timeout: 300 * time.Millisecond})
		if !errors.Is(err, runtime.ErrExecTimeout) || code != 137 || time.Since(start) > 5*time.Second {
			t.Fatalf("exec timeout: code %d, err %v after %v", code, err, time.Since(start))
		}
		if entries, _ := os.ReadDir(h.Bundle.Dir()); slices.ContainsFunc(entries, func(d os.DirEntry) bool {
			return strings.HasPrefix(d.Name(), "exec-")
		}) {
			t.Fatal("an exec dir is left in the bundle")
		}
		// The container itself is untouched.
		if st, err := e.rt.State(ctx(t), "ex"); err != nil || st.Status != "running" {
			t.Fatalf("state after execs: %+v, %v", st, err)
		}
		if _, err := e.rt.Exec(ctx(t), runtime.ExecOpts{ID: "nope", Args: []string{"true"}}); !errors.Is(err, runtime.ErrNotExist) {
			t.Fatalf("exec in an unknown container: %v", err)
		}
	})
}

func TestLogReopen(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("lg", ctrSpec{args: []string{"sh", "-c", "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.05; done"}},
			runtime.CreateOpts{})
		lines := func(p string) []string {
			if _, err := os.Stat(p); err != nil {
				return nil
			}
			return logLines(t, p)
		}
		if !eventually(5*time.Second, func() bool { return len(lines(h.LogPath)) >= 3 }) {
			t.Fatalf("log: %q", lines(h.LogPath))
		}
		if err := os.Rename(h.LogPath, h.LogPath+".1"); err != nil {
			t.Fatal(err)
		}
		if err := e.rt.ReopenLog(ctx(t), h); err != nil {
			t.Fatal(err)
		}
		if !eventually(5*time.Second, func() bool { return len(lines(h.LogPath)) >= 3 }) {
			t.Fatalf("no log after the reopen: %q", lines(h.LogPath))
		}
		if err := e.rt.Kill(ctx(t), "lg", syscall.SIGKILL, true); err != nil {
			t.Fatal(err)
		}
		e.waitExit("lg", 10*time.Second)
		if err := e.rt.Delete(ctx(t), "lg"); err != nil {
			t.Fatal(err)
		}
		// Each line once, in order, across the two files.
		all := append(lines(h.LogPath+".1"), lines(h.LogPath)...)
		for i, l := range all {
			if want := fmt.Sprintf("stdout F line%d", i); l != want {
				t.Fatalf("record %d is %q, want %q (all: %q)", i, l, want, all)
			}
		}
	})
}

func TestLogSizeMax(t *testing.T) {
	e := newEnv(t, shim1)
	h, _ := e.run("lm", ctrSpec{args: []string{"sh", "-c", "seq 1 200"}}, runtime.CreateOpts{LogSizeMax: 2000})
	e.waitExit("lm", 10*time.Second)
	if err := e.rt.Delete(ctx(t), "lm"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(h.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := logLines(t, h.LogPath)
	if fi.Size() > 2000 || len(lines) == 0 || lines[len(lines)-1] != "stdout F 200" {
		t.Fatalf("log of %d bytes ends %q; want at most 2000 bytes ending with 200", fi.Size(), lines[len(lines)-1:])
	}
}

func TestAttach(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("at", ctrSpec{args: []string{"sh", "-c", "echo ready; read w; echo got-$w; cat; echo done >&2"}},
			runtime.CreateOpts{Stdin: true, StdinOnce: true})
		if !eventually(5*time.Second, func() bool { return len(logLines(t, h.LogPath)) >= 1 }) {
			t.Fatal("container did not start")
		}
		// A second client that only watches, then detaches.
		pr, pw := io.Pipe()
		var watched syncBuffer
		watchDone := make(chan error, 1)
		go func() {
			watchDone <- e.rt.Attach(ctx(t), runtime.AttachOpts{ID: "at", Bundle: h.Bundle, Stdin: pr, Stdout: &watched, Stderr: &watched})
		}()
		// The watcher is attached once it sees the answer to its own input.
		if _, err := pw.Write([]byte("w\n")); err != nil {
			t.Fatal(err)
		}
		if !eventually(5*time.Second, func() bool { return strings.Contains(watched.String(), "got-w") }) {
			t.Fatalf("the watching attach saw %q, not the answer to its input", watched.String())
		}
		var out, errs syncBuffer
		err := e.rt.Attach(ctx(t), runtime.AttachOpts{ID: "at", Bundle: h.Bundle, StdinOnce: true,
			Stdin: strings.NewReader("ping\n"), Stdout: &out, Stderr: &errs})
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != "ping\n" || errs.String() != "done\n" {
			t.Fatalf("attach got stdout %q, stderr %q", out.String(), errs.String())
		}
		if x := e.waitExit("at", 10*time.Second); x.Code != 0 {
			t.Fatalf("exit %+v: closing stdin should end cat", x)
		}
		select {
		case err := <-watchDone:
			if err != nil || !strings.Contains(watched.String(), "ping") {
				t.Fatalf("watching attach: %v, %q", err, watched.String())
			}
		case <-time.After(5 * time.Second):
			t.Fatal("watching attach did not end with the container")
		}
		pw.Close()
		got := logLines(t, h.LogPath)
		if !slices.Contains(got, "stdout F ping") || !slices.Contains(got, "stderr F done") {
			t.Fatalf("log %q", got)
		}
		// Attaching to an exited container returns at once.
		if err := e.rt.Attach(ctx(t), runtime.AttachOpts{ID: "at", Stdout: io.Discard}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestTerminalAttach(t *testing.T) {
	forEachShim(t, func(t *testing.T, shim string) {
		e := newEnv(t, shim)
		h, _ := e.run("tty", ctrSpec{terminal: true, args: []string{"sh", "-c", "while :; do stty size; sleep 0.1; done"}},
			runtime.CreateOpts{Stdin: true})
		if _, err := os.Stat(h.Bundle.File("stderr")); err == nil {
			t.Fatal("a terminal container got a stderr FIFO")
		}
		sizes := make(chan runtime.TermSize, 1)
		sizes <- runtime.TermSize{Width: 100, Height: 40}
		pr, pw := io.Pipe()
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- e.rt.Attach(ctx(t), runtime.AttachOpts{ID: "tty", Bundle: h.Bundle, Tty: true, Stdin: pr, Stdout: &out, Resize: sizes})
		}()
		if !eventually(5*time.Second, func() bool { return strings.Contains(out.String(), "40 100\r\n") }) {
			t.Fatalf("attached output %q: no resize seen", out.String())
		}
		pw.Close() // the client detaches; the container runs on
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("attach did not return when the client's input ended")
		}
		if st, err := e.rt.State(ctx(t), "tty"); err != nil || st.Status != "running" {
			t.Fatalf("state after detach: %+v, %v", st, err)
		}
		// The log holds the lines without the terminal's CR.
		if !eventually(5*time.Second, func() bool { return slices.Contains(logLines(t, h.LogPath), "stdout F 40 100") }) {
			t.Fatalf("log %q", logLines(t, h.LogPath))
		}
	})
}
