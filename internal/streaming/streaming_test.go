package streaming

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// The library reports an exit code only for errors it can assert to
// utilexec.ExitError; anything else becomes an internal error.
func TestExitErrorIsTheLibrarysExitError(t *testing.T) {
	var err error = exitError(7)
	ee, ok := err.(utilexec.ExitError)
	if !ok || !ee.Exited() || ee.ExitStatus() != 7 {
		t.Fatalf("exitError(7) is not an exit error with code 7: %v", err)
	}
}

func TestSizesRelayAndStop(t *testing.T) {
	in := make(chan remotecommand.TerminalSize)
	done := make(chan struct{})
	out := sizes(in, done)
	in <- remotecommand.TerminalSize{Width: 100, Height: 30}
	if s := <-out; s != (runtime.TermSize{Width: 100, Height: 30}) {
		t.Errorf("relayed %+v", s)
	}
	close(done)
	select {
	case _, ok := <-out:
		if ok {
			t.Error("a size after the session ended")
		}
	case <-time.After(time.Second):
		t.Error("relay did not stop with the session")
	}
	if sizes(nil, done) != nil {
		t.Error("no resize stream must give a nil channel")
	}
}

// forward with no namespace path dials the daemon's own loopback.
func TestForwardCopiesBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 4)
		if _, err := io.ReadFull(c, b); err == nil {
			_, _ = c.Write(append([]byte("got "), b...))
		}
	}()
	client, stream := net.Pipe()
	defer client.Close()
	errc := make(chan error, 1)
	go func() { errc <- forward(context.Background(), "", int32(ln.Addr().(*net.TCPAddr).Port), stream) }()
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "got ping" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := <-errc; err != nil {
		t.Errorf("forward: %v", err)
	}
}

func TestForwardRefusedPortIsAnError(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	_, stream := net.Pipe()
	if err := forward(context.Background(), "", int32(port), stream); err == nil {
		t.Error("forward to a closed port succeeded")
	}
}
