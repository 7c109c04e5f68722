package conmon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/cradle-runtime/cradle/internal/runtime"
	"golang.org/x/sys/unix"
)

// Attach connects to conmon's attach socket (SOCK_SEQPACKET: a stream
// byte, 2 stdout or 3 stderr, then up to 8192 bytes; input packets go to
// the container's stdin). It returns when the container's output ends,
// when the client ends its input, or when ctx ends.
func (r *Runtime) Attach(ctx context.Context, o runtime.AttachOpts) error {
	path := filepath.Join(r.opts.SocketDir, o.ID, "attach")
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return fmt.Errorf("attach to %s: %w", o.ID, err)
	}
	defer conn.Close()
	done := make(chan struct{})
	defer close(done)
	if o.Resize != nil {
		go resizeCtl(o.Bundle.File("ctl"), o.Tty, o.Resize, done)
	}
	outc := make(chan error, 1)
	go func() { outc <- attachOutput(conn, o) }()
	var inc chan error
	if o.Stdin != nil {
		inc = make(chan error, 1)
		// Each write is one packet, and conmon drops what a packet holds
		// beyond its read size (32 KiB in 2.1.6): stay well below it.
		go func() { inc <- runtime.CopyChunks(conn, o.Stdin, 8192) }()
	}
	for {
		select {
		case err := <-outc:
			return err
		case err := <-inc:
			inc = nil
			if err == nil && o.StdinOnce && !o.Tty {
				// Closes the container's stdin (conmon was started without
				// --leave-stdin-open); keep the output until it ends. With
				// a terminal, conmon would close the pty master instead.
				_ = conn.CloseWrite()
				continue
			}
			return nil // the client detached
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func attachOutput(conn *net.UnixConn, o runtime.AttachOpts) error {
	buf := make([]byte, 32*1024)
	for {
		n, err := conn.Read(buf)
		if n > 1 {
			w := o.Stdout
			if buf[0] == 3 && (o.Stderr != nil || !o.Tty) {
				w = o.Stderr
			}
			if w != nil {
				if _, werr := w.Write(buf[1:n]); werr != nil {
					return nil // the client is gone
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil // conmon closed: the container exited
		}
		if err != nil {
			return fmt.Errorf("attach to %s: %w", o.ID, err)
		}
	}
}

// resizeCtl writes terminal sizes to conmon's ctl FIFO, one message per
// write, at least ctlGap apart, the newest size winning.
func resizeCtl(ctl string, tty bool, sizes <-chan runtime.TermSize, done <-chan struct{}) {
	var pending *runtime.TermSize
	var wake <-chan time.Time
	var last time.Time
	for {
		select {
		case s, ok := <-sizes:
			if !ok {
				sizes = nil
				break
			}
			if tty { // without a terminal there is nothing to resize
				pending = &s
			}
		case <-wake:
			wake = nil
		case <-done:
			return
		}
		if pending == nil {
			if sizes == nil {
				return
			}
			continue
		}
		if wake != nil {
			continue
		}
		if d := ctlGap - time.Since(last); d > 0 {
			wake = time.After(d)
			continue
		}
		if err := writeCtl(ctl, fmt.Sprintf("1 %d %d\n", pending.Height, pending.Width)); err != nil {
			slog.Debug("resize through ctl failed", "ctl", ctl, "error", err)
			return
		}
		last, pending = time.Now(), nil
	}
}

// writeCtl opens the FIFO non-blocking: with conmon gone the open fails
// (ENXIO) instead of hanging.
func writeCtl(path, msg string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
