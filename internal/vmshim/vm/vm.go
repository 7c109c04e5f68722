// Package vm boots and stops one pod's microVM: the TAP bridged to the
// pod's interface, qemu, and the agent connection.
package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/cradle-runtime/cradle/internal/agent/api"
	"github.com/cradle-runtime/cradle/internal/deathsig"
	"github.com/cradle-runtime/cradle/internal/vmshim/qemu"
	"github.com/cradle-runtime/cradle/internal/vmshim/tap"
)

// TapName is the TAP device's name in the pod's netns.
const TapName = "tap0"

// Options are one VM's.
type Options struct {
	Name      string
	Kernel    string
	Initrd    string
	Accel     string
	CPUs      int
	MemoryMiB int
	StateDir  string // sockets and console log; made and removed here
	ShareDir  string // shared over 9p; "" for none
	NetNS     string // the pod's pinned netns; "" for no network
	Eth       string // the CNI interface in it; default eth0
	Hostname  string
	// BootTimeout bounds the boot until the agent answers.
	BootTimeout time.Duration
}

// Timing splits a boot.
type Timing struct {
	Network  time.Duration // TAP and filters
	Firmware time.Duration // qemu start to the guest kernel's start (BIOS, kernel and initrd load)
	Boot     time.Duration // guest kernel start to the agent's first instruction (guest uptime)
	Modules  time.Duration // the agent's start to its first answer (mounts, modules, port)
	Agent    time.Duration // qemu start until the agent answered and set the network up
}

// VM is a running microVM.
type VM struct {
	opts   Options
	cmd    *exec.Cmd
	bridge *tap.Bridge
	Agent  *api.Client
	Kernel string // the guest's kernel release
	Timing Timing
	exited chan struct{}
	err    error // qemu's exit, once exited is closed

	stopOnce sync.Once
	stopErr  error
	stopping atomic.Bool
}

// Stopping reports a Shutdown begun.
func (v *VM) Stopping() bool { return v.stopping.Load() }

// Boot starts the VM and returns once its agent has answered and set up
// the guest's network. On error nothing is left behind.
func Boot(ctx context.Context, o Options) (_ *VM, retErr error) {
	if o.Eth == "" {
		o.Eth = "eth0"
	}
	if o.BootTimeout == 0 {
		o.BootTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("vm state dir: %w", err)
	}
	v := &VM{opts: o, exited: make(chan struct{})}
	defer func() {
		if retErr != nil {
			v.kill()
			v.cleanup()
		}
	}()
	t0 := time.Now()
	cfg := qemu.Config{Name: o.Name, Accel: o.Accel, CPUs: o.CPUs, MemoryMiB: o.MemoryMiB,
		Kernel: o.Kernel, Initrd: o.Initrd, StateDir: o.StateDir, ShareDir: o.ShareDir}
	var files []*os.File
	if o.NetNS != "" {
		b, err := tap.Setup(o.NetNS, o.Eth, TapName)
		if err != nil {
			return nil, err
		}
		v.bridge = b
		files = append(files, b.File)
		cfg.NetFD, cfg.MAC = 2+len(files), b.Link.MAC
	}
	v.Timing.Network = time.Since(t0)
	// The agent's socket exists before qemu so that the dial below needs
	// no wait: the connection queues until qemu accepts it.
	sockPath := filepath.Join(o.StateDir, qemu.AgentSocket)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	lf, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("agent socket: %w", err)
	}
	defer lf.Close()
	files = append(files, lf)
	cfg.AgentFD = 2 + len(files)

	v.cmd = cfg.Command(files...)
	var stderr limitedBuffer
	v.cmd.Stdout, v.cmd.Stderr = &stderr, &stderr
	tq := time.Now()
	waited, err := deathsig.Start(v.cmd, syscall.SIGKILL)
	if err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	go func() {
		v.err = <-waited
		if v.err != nil && stderr.Len() > 0 {
			v.err = fmt.Errorf("%w: %s", v.err, stderr.String())
		}
		close(v.exited)
	}()
	if v.bridge != nil {
		// qemu holds the TAP now; the device lives as long as it does.
		v.bridge.File.Close()
		v.bridge.File = nil
	}
	lf.Close()

	conn, err := net.Dial("unix", sockPath)
	if err != nil {
		return nil, fmt.Errorf("dial agent: %w", err)
	}
	v.Agent = api.NewClient(ttrpc.NewClient(conn))
	bctx, cancel := context.WithTimeout(ctx, o.BootTimeout)
	defer cancel()
	go func() {
		select {
		case <-v.exited: // a qemu that dies fails the boot at once
			cancel()
		case <-bctx.Done():
		}
	}()
	var pong api.PingReply
	if err := v.Agent.Call(bctx, api.MPing, nil, &pong); err != nil {
		return nil, v.bootErr("ping agent", err)
	}
	v.Kernel = pong.KernelRelease
	// The guest's uptime starts with its kernel: the rest of the wait
	// until the answer was qemu's firmware and loading.
	answered := time.Duration(pong.UptimeSeconds * float64(time.Second))
	v.Timing.Boot = time.Duration(pong.AgentSeconds * float64(time.Second))
	v.Timing.Modules = answered - v.Timing.Boot
	v.Timing.Firmware = max(time.Since(tq)-answered, 0)
	if v.bridge != nil {
		if err := v.Agent.Call(bctx, api.MSetupNetwork, v.bridge.Link.Network(o.Hostname), nil); err != nil {
			return nil, v.bootErr("guest network", err)
		}
	}
	v.Timing.Agent = time.Since(tq)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	slog.Info(fmt.Sprintf("vm booted: accel %s, kernel %s, tap %s, firmware and load %s, kernel to agent %s, agent init %s, qemu start to agent ready %s",
		o.Accel, v.Kernel, v.Timing.Network.Round(time.Microsecond), r(v.Timing.Firmware), r(v.Timing.Boot), r(v.Timing.Modules), r(v.Timing.Agent)),
		"name", o.Name)
	return v, nil
}

func (v *VM) bootErr(what string, err error) error {
	select {
	case <-v.exited:
		return fmt.Errorf("%s: qemu exited: %w (console: %s)", what, v.err, v.consoleTail())
	default:
	}
	return fmt.Errorf("%s: %w (console: %s)", what, err, v.consoleTail())
}

func (v *VM) consoleTail() string {
	data, _ := os.ReadFile(filepath.Join(v.opts.StateDir, qemu.ConsoleLog))
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// Pid is qemu's.
func (v *VM) Pid() int { return v.cmd.Process.Pid }

// Exited is closed when qemu has exited.
func (v *VM) Exited() <-chan struct{} { return v.exited }

// Err is qemu's exit; valid once Exited is closed.
func (v *VM) Err() error { return v.err }

// Shutdown powers the guest off (killing qemu when it does not stop
// within timeout) and removes the TAP, filters and state directory.
func (v *VM) Shutdown(ctx context.Context, timeout time.Duration) error {
	v.stopping.Store(true)
	v.stopOnce.Do(func() { v.stopErr = v.shutdown(ctx, timeout) })
	return v.stopErr
}

func (v *VM) shutdown(ctx context.Context, timeout time.Duration) error {
	if v.Agent != nil {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := v.Agent.Call(cctx, api.MShutdown, nil, nil)
		cancel()
		if err != nil && !errors.Is(err, ttrpc.ErrClosed) {
			slog.Debug("agent shutdown", "name", v.opts.Name, "error", err)
		}
	}
	select {
	case <-v.exited:
	case <-time.After(timeout):
		slog.Warn("vm did not power off; killing qemu", "name", v.opts.Name, "timeout", timeout)
		v.kill()
	}
	return v.cleanup()
}

func (v *VM) kill() {
	if v.cmd == nil || v.cmd.Process == nil {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	<-v.exited
}

func (v *VM) cleanup() error {
	var errs []error
	if v.Agent != nil {
		v.Agent.Close()
	}
	if v.bridge != nil {
		errs = append(errs, v.bridge.Teardown())
	}
	errs = append(errs, os.RemoveAll(v.opts.StateDir))
	return errors.Join(errs...)
}
