// cradle-vm-agent is the /init of a cradle microVM (see internal/agent).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/cradle-runtime/cradle/internal/agent"
	"github.com/cradle-runtime/cradle/internal/agent/api"
	"golang.org/x/sys/unix"
)

func main() {
	// The console is the VM's serial port, which qemu logs on the host.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	a := agent.New(api.GuestRuntime)
	if err := agent.Init(); err != nil {
		slog.Error("agent init", "error", err)
		poweroff()
	}
	if agent.Probe() {
		fmt.Fprintln(os.Stderr, api.ProbeMarker)
		poweroff()
	}
	if err := agent.Serve(context.Background(), a, api.PortName); err != nil {
		slog.Error("agent serve", "error", err)
	}
	poweroff()
}

// poweroff ends the VM: PID 1 must never exit (the kernel would panic).
func poweroff() {
	unix.Sync()
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
