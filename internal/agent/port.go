package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// findPort is the /dev node of the virtio-serial port named name.
func findPort(name string) (string, error) {
	entries, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err == nil && strings.TrimSpace(string(data)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(e)), nil
		}
	}
	return "", fmt.Errorf("no virtio-serial port named %s", name)
}

// portListener hands out the port as one connection at a time: a
// virtio-serial port is a single stream, opened anew when the host side
// has gone (the read returned EOF).
type portListener struct {
	path   string
	ctx    context.Context
	cancel context.CancelFunc
	free   chan struct{} // the previous connection is closed
}

func listenPort(path string) *portListener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &portListener{path: path, ctx: ctx, cancel: cancel, free: make(chan struct{}, 1)}
	l.free <- struct{}{}
	return l
}

func (l *portListener) Accept() (net.Conn, error) {
	select {
	case <-l.free:
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
	f, err := os.OpenFile(l.path, os.O_RDWR, 0)
	if err != nil {
		l.free <- struct{}{}
		return nil, fmt.Errorf("open %s: %w", l.path, err)
	}
	return &portConn{File: f, l: l, opened: time.Now()}, nil
}

func (l *portListener) Close() error { l.cancel(); return nil }

func (l *portListener) Addr() net.Addr { return portAddr(l.path) }

type portAddr string

func (a portAddr) Network() string { return "virtio-serial" }
func (a portAddr) String() string  { return string(a) }

// portConn is the port as a net.Conn.
type portConn struct {
	*os.File
	l      *portListener
	opened time.Time
	closed bool
}

func (c *portConn) Read(p []byte) (int, error) {
	n, err := c.File.Read(p)
	if n == 0 && err == nil {
		// The host side is not connected: the port reads as EOF.
		err = errors.New("virtio-serial: host side disconnected")
	}
	return n, err
}

func (c *portConn) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	err := c.File.Close()
	// A port whose host side is away reads EOF at once: pace the reopen.
	if wait := 50*time.Millisecond - time.Since(c.opened); wait > 0 {
		time.Sleep(wait)
	}
	slog.Debug("agent connection closed", "port", c.l.path)
	c.l.free <- struct{}{}
	return err
}

func (c *portConn) LocalAddr() net.Addr  { return portAddr(c.l.path) }
func (c *portConn) RemoteAddr() net.Addr { return portAddr("host") }

// Serve serves the agent on the named virtio-serial port until ctx ends.
func Serve(ctx context.Context, a *Agent, port string) error {
	var path string
	var err error
	// The port's device appears once virtio_console has probed it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if path, err = findPort(port); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		return err
	}
	srv, err := newServer()
	if err != nil {
		return err
	}
	a.Register(srv)
	l := listenPort(path)
	go func() { <-ctx.Done(); l.Close(); srv.Close() }()
	slog.Info("agent serving", "port", path)
	return srv.Serve(ctx, l)
}
