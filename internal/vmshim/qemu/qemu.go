// Package qemu runs a pod's microVM: the command line (TCG or KVM), and
// the probe that decides whether KVM works on this host.
package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/agent/api"
)

// Binary is qemu's name in PATH.
const Binary = "qemu-system-x86_64"

// Files of a VM's state directory.
const (
	AgentSocket = "agent.sock" // the agent's virtio-serial port
	QMPSocket   = "qmp.sock"
	ConsoleLog  = "console.log" // the guest's serial console
)

// Config is one VM.
type Config struct {
	Name      string
	Accel     string // "kvm" or "tcg"
	CPUs      int
	MemoryMiB int
	Kernel    string
	Initrd    string
	Append    string // extra kernel command line
	StateDir  string // sockets and the console log
	ShareDir  string // host directory shared over 9p; "" for none
	NetFD     int    // the TAP queue's fd in qemu (ExtraFiles 0 is fd 3); 0 for no NIC
	// AgentFD is a listening unix socket's fd in qemu for the agent's
	// port, made by the caller so that it can dial before qemu runs;
	// 0: qemu listens on StateDir/agent.sock itself.
	AgentFD int
	MAC     string
}

// Args is qemu's command line for c.
func (c Config) Args() []string {
	accel := c.Accel
	if accel == "" {
		accel = "tcg"
	}
	cmdline := "console=ttyS0 quiet panic=-1 rdinit=/init"
	if c.Append != "" {
		cmdline += " " + c.Append
	}
	args := []string{
		"-name", c.Name,
		"-machine", "pc,accel=" + accel,
		"-cpu", cpuModel(accel),
		"-smp", strconv.Itoa(max(c.CPUs, 1)),
		"-m", strconv.Itoa(max(c.MemoryMiB, 64)),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", c.Kernel, "-initrd", c.Initrd, "-append", cmdline,
		"-serial", "file:" + filepath.Join(c.StateDir, ConsoleLog),
		"-qmp", "unix:" + filepath.Join(c.StateDir, QMPSocket) + ",server=on,wait=off",
		"-device", "virtio-serial-pci,id=vser0",
		"-chardev", agentChardev(c),
		"-device", "virtserialport,bus=vser0.0,chardev=agent,name=" + api.PortName,
	}
	if c.NetFD > 0 {
		args = append(args,
			"-netdev", "tap,id=net0,fd="+strconv.Itoa(c.NetFD),
			"-device", "virtio-net-pci,netdev=net0,romfile=,mac="+c.MAC)
	}
	if c.ShareDir != "" {
		args = append(args,
			"-fsdev", "local,id=share0,path="+c.ShareDir+",security_model=passthrough",
			"-device", "virtio-9p-pci,fsdev=share0,mount_tag="+api.ShareTag)
	}
	return args
}

func agentChardev(c Config) string {
	if c.AgentFD > 0 {
		return "socket,id=agent,fd=" + strconv.Itoa(c.AgentFD) + ",server=on,wait=off"
	}
	return "socket,id=agent,path=" + filepath.Join(c.StateDir, AgentSocket) + ",server=on,wait=off"
}

func cpuModel(accel string) string {
	if accel == "kvm" {
		return "host"
	}
	return "max"
}

// Command is the qemu process for c; files are its fds from 3 on.
func (c Config) Command(files ...*os.File) *exec.Cmd {
	cmd := exec.Command(Binary, c.Args()...)
	cmd.ExtraFiles = files
	// Start it with deathsig.Start(cmd, SIGKILL): qemu dies with the
	// shim rather than run unmanaged.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

var (
	probeOnce sync.Once
	probed    string
)

// Accel is "kvm" when /dev/kvm boots a guest here, else "tcg". The probe
// boots kernel with initrd under KVM once per process: nested KVM can
// hang before the kernel starts, so a boot that does not reach the
// agent's power-off within timeout counts as broken.
func Accel(ctx context.Context, kernel, initrd string, timeout time.Duration) string {
	probeOnce.Do(func() {
		probed = "tcg"
		if _, err := os.Stat("/dev/kvm"); err != nil {
			return
		}
		if err := probeKVM(ctx, kernel, initrd, timeout); err == nil {
			probed = "kvm"
		}
	})
	return probed
}

// probeKVM boots the agent with cradle.probe, on which it powers off at once.
func probeKVM(ctx context.Context, kernel, initrd string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "cradle-kvm-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c := Config{Name: "cradle-kvm-probe", Accel: "kvm", MemoryMiB: 128, Kernel: kernel, Initrd: initrd,
		StateDir: dir, Append: "cradle.probe=1"}
	cmd := exec.CommandContext(ctx, Binary, c.Args()...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("kvm probe: no power-off within %s", timeout)
	}
	if err != nil {
		return fmt.Errorf("kvm probe: %w: %s", err, strings.TrimSpace(string(out)))
	}
	log, _ := os.ReadFile(filepath.Join(dir, ConsoleLog))
	if !strings.Contains(string(log), api.ProbeMarker) {
		return errors.New("kvm probe: the guest did not reach its agent")
	}
	return nil
}
