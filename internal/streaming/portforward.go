package streaming

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
)

const dialTimeout = 10 * time.Second

// forward copies between stream and port on the loopback of the network
// namespace at nsPath ("" is the daemon's own: the host's, for pods with
// hostNetwork). It returns when the pod's side closes.
func forward(ctx context.Context, nsPath string, port int32, stream io.ReadWriteCloser) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("invalid port %d", port)
	}
	conn, err := dialIn(nsPath, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		_, err := io.Copy(conn, stream)
		if err != nil {
			conn.Close() // the client broke off: end the other direction too
			return
		}
		_ = conn.CloseWrite() // the client finished sending
	}()
	if _, err := io.Copy(stream, conn); err != nil && ctx.Err() == nil {
		slog.Debug("port-forward ended", "port", port, "error", err)
	}
	return nil
}

// dialIn connects to port on 127.0.0.1, then [::1], inside the namespace.
// A socket belongs to the namespace it was created in, so the connection
// stays there after the thread switched back.
func dialIn(nsPath string, port int32) (*net.TCPConn, error) {
	var conn *net.TCPConn
	dial := func(ns.NetNS) error {
		var errs []error
		for _, host := range []string{"127.0.0.1", "::1"} {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))), dialTimeout)
			if err == nil {
				conn = c.(*net.TCPConn)
				return nil
			}
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	var err error
	if nsPath == "" {
		err = dial(nil)
	} else {
		err = ns.WithNetNSPath(nsPath, dial)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to port %d in the pod: %w", port, err)
	}
	return conn, nil
}
