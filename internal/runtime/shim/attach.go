package shim

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cradle-runtime/cradle/internal/runtime"
)

// Attach joins the container's stdio: the output the log copier reads is
// fanned out to the client, the client's input goes to the container's
// stdin FIFO, and terminal sizes to the shim. It returns when the
// container's output ends (it exited), when the client ends its input, or
// when ctx ends. With StdinOnce and no terminal, the end of the client's
// input closes the container's stdin and the output is followed to its
// end, as conmon's attach does.
func (r *Runtime) Attach(ctx context.Context, o runtime.AttachOpts) error {
	c, err := r.known(o.ID)
	if err != nil {
		return err
	}
	if c.io == nil {
		return fmt.Errorf("attach to %s: the container's output is not being read", o.ID)
	}
	stderr := o.Stderr
	if stderr == nil && !o.Tty {
		stderr = o.Stdout
	}
	sub := c.io.fan.subscribe(o.Stdout, stderr)
	if sub == nil {
		return nil // the output already ended
	}
	defer func() {
		c.io.fan.unsubscribe(sub)
		<-sub.done // nothing is written to the client after Attach returns
	}()
	done := make(chan struct{})
	defer close(done)
	api := c.group.api()
	if o.Tty && o.Resize != nil {
		go resizeLoop(context.WithoutCancel(ctx), api, o.ID, "", o.Resize, done)
	}
	var inc chan error
	if o.Stdin != nil {
		inc = make(chan error, 1)
		go func() { inc <- runtime.CopyChunks(stdinWriter{c.io}, o.Stdin, 32*1024) }()
	}
	for {
		select {
		case <-sub.done:
			return nil // the container's output ended
		case err := <-inc:
			inc = nil
			if err == nil && o.StdinOnce && !o.Tty {
				if c.io.closeStdin() {
					if err := api.CloseIO(context.WithoutCancel(ctx), o.ID, ""); err != nil {
						slog.Debug("close container stdin", "container", o.ID, "error", err)
					}
				}
				continue
			}
			return nil // the client detached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type stdinWriter struct{ io *ctrIO }

func (w stdinWriter) Write(p []byte) (int, error) {
	if err := w.io.writeStdin(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
