package agent

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// readAll reads a stream until EOF.
func readAll(t *testing.T, s *stream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	for {
		data, eof, err := s.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(data)
		if eof {
			return out.String()
		}
	}
}

func TestProcOutputAndExit(t *testing.T) {
	p, err := startProc(exec.Command("/bin/sh", "-c", "echo out; echo err >&2; read x; echo got $x; exit 7"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.Write([]byte("in\n")); err != nil {
		t.Fatal(err)
	}
	p.stdin.Close()
	if got := readAll(t, p.stdout); got != "out\ngot in\n" {
		t.Errorf("stdout %q", got)
	}
	if got := readAll(t, p.stderr); got != "err\n" {
		t.Errorf("stderr %q", got)
	}
	code, _, err := p.wait(context.Background())
	if err != nil || code != 7 {
		t.Errorf("exit %d %v, want 7", code, err)
	}
}

func TestProcKilledStatus(t *testing.T) {
	p, err := startProc(exec.Command("/bin/sleep", "100"), false)
	if err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Process.Kill()
	if code, _, _ := p.wait(context.Background()); code != 137 {
		t.Errorf("exit %d, want 137", code)
	}
}

// TestStreamBackpressure: past maxBuffered the writer waits for a read,
// and no byte is lost.
func TestStreamBackpressure(t *testing.T) {
	p, err := startProc(exec.Command("/bin/sh", "-c", "head -c 3000000 /dev/zero"), false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, p.stdout); len(got) != 3000000 {
		t.Errorf("read %d bytes, want 3000000", len(got))
	}
}

func TestStreamReadHonoursContext(t *testing.T) {
	s := newStream()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.read(ctx); err == nil {
		t.Error("read without data returned no error after cancel")
	}
}
