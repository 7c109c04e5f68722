package cli

import (
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier tells systemd (Type=notify) when the daemon is ready and when it
// stops. The address is taken out of the environment at start: runc and
// conmon, which inherit it, would otherwise proxy the socket into
// containers and wait for each container to send READY=1 itself. That is
// also why daemon.SdNotify, which reads the environment on every call, is
// not used for the send.
type notifier struct{ addr string }

// takeNotifySocket reads and unsets NOTIFY_SOCKET; it runs before the daemon
// starts any child.
func takeNotifySocket() *notifier {
	n := &notifier{addr: os.Getenv("NOTIFY_SOCKET")}
	_ = os.Unsetenv("NOTIFY_SOCKET")
	return n
}

// notify sends one state; without NOTIFY_SOCKET it does nothing.
func (n *notifier) notify(state string) {
	if n == nil || n.addr == "" {
		return
	}
	if err := n.send(state); err != nil {
		slog.Warn("systemd notification failed", "state", state, "socket", n.addr, "error", err)
		return
	}
	slog.Debug("systemd notified", "state", state)
}

func (n *notifier) send(state string) error {
	// A leading '@' (an abstract socket) is understood by package net.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// Notification states, as go-systemd names them.
const (
	notifyReady    = daemon.SdNotifyReady
	notifyStopping = daemon.SdNotifyStopping
)
