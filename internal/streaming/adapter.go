package streaming

import (
	"context"
	"fmt"
	"io"

	"github.com/cradle-runtime/cradle/internal/runtime"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
)

// adapter implements the library's streaming.Runtime on a Backend.
type adapter struct{ b Backend }

func (a *adapter) Exec(ctx context.Context, containerID string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	done := make(chan struct{})
	defer close(done)
	code, err := a.b.Exec(ctx, containerID, cmd, streams(in, out, errw, tty, resize, done))
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

func (a *adapter) Attach(ctx context.Context, containerID string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	done := make(chan struct{})
	defer close(done)
	return a.b.Attach(ctx, containerID, streams(in, out, errw, tty, resize, done))
}

func (a *adapter) PortForward(ctx context.Context, sandboxID string, port int32, stream io.ReadWriteCloser) error {
	nsPath, err := a.b.NetNS(sandboxID)
	if err != nil {
		return err
	}
	return forward(ctx, nsPath, port, stream)
}

// streams converts the library's streams. Unrequested streams arrive as
// nil interfaces of the library's types, so they stay nil here.
func streams(in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, done <-chan struct{}) Streams {
	s := Streams{Stdin: in, Tty: tty, Resize: sizes(resize, done)}
	if out != nil {
		s.Stdout = out
	}
	if errw != nil {
		s.Stderr = errw
	}
	return s
}

// sizes relays terminal sizes until the library closes its channel or the
// session ends.
func sizes(in <-chan remotecommand.TerminalSize, done <-chan struct{}) <-chan runtime.TermSize {
	if in == nil {
		return nil
	}
	out := make(chan runtime.TermSize)
	go func() {
		defer close(out)
		for {
			select {
			case s, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- runtime.TermSize{Width: s.Width, Height: s.Height}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out
}

// exitError reports a non-zero exit code. The library recognises exit
// codes by the method set of k8s.io/utils/exec.ExitError and sends them to
// the client as such.
type exitError int

func (e exitError) Error() string   { return fmt.Sprintf("exit code %d", int(e)) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return int(e) }
