package nri

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// relay serves the public NRI socket and relays each connection to the
// adaptation's private one. The NRI library cannot disconnect external
// plugins when it stops; closing the relayed connections does, so a
// plugin of a stopped NRI sees its connection end and may reconnect.
type relay struct {
	l       *net.UnixListener
	private string
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// privateSocket is where the adaptation listens for the relay of public.
func privateSocket(public string) string {
	return filepath.Join(filepath.Dir(public), "."+filepath.Base(public)+".relay")
}

func startRelay(public string) (*relay, error) {
	if err := os.Remove(public); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale NRI socket: %w", err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: public, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on NRI socket: %w", err)
	}
	r := &relay{l: l, private: privateSocket(public), conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		p, err := net.Dial("unix", r.private)
		if err != nil {
			slog.Warn("relay NRI plugin connection", "error", err)
			c.Close()
			continue
		}
		if !r.track(c, p) {
			return
		}
		r.wg.Add(2)
		go r.pipe(c, p)
		go r.pipe(p, c)
	}
}

// track records a relayed pair; false once the relay is closed.
func (r *relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		r.conns[c] = struct{}{}
	}
	return true
}

// pipe copies until either side ends, then closes both.
func (r *relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	r.mu.Lock()
	delete(r.conns, dst)
	delete(r.conns, src)
	r.mu.Unlock()
}

// close removes the public socket and ends every relayed connection.
func (r *relay) close() {
	r.mu.Lock()
	r.closed = true
	r.l.Close()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
