// Package vmshim is cradle-shim-vm, a containerd runtime shim v2 (task
// API v3 over ttrpc) that boots each pod in a qemu microVM: the sandbox
// task is the VM, booted in the pod's netns with a TAP mirrored to the
// CNI's eth0, and every container runs in it under the guest's runc,
// driven through cradle-vm-agent over a virtio-serial port.
package vmshim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskv3 "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// flags are those containerd gives every shim.
type flags struct {
	namespace, address, publishBinary, id, bundle string
	debug                                         bool
}

const listenFDEnv = "CRADLE_SHIM_VM_LISTEN_FD"

// Main runs the shim's command line: start, delete, or (with the
// listening socket from start) the serving shim.
func Main(args []string) int {
	fs := flag.NewFlagSet("cradle-shim-vm", flag.ContinueOnError)
	var f flags
	fs.StringVar(&f.namespace, "namespace", "", "containerd namespace")
	fs.StringVar(&f.address, "address", "", "containerd's address (names the socket)")
	fs.StringVar(&f.publishBinary, "publish-binary", "", "unused: events go to TTRPC_ADDRESS")
	fs.StringVar(&f.id, "id", "", "task id")
	fs.StringVar(&f.bundle, "bundle", "", "bundle (default: the working directory)")
	fs.BoolVar(&f.debug, "debug", false, "debug log")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if f.bundle == "" {
		f.bundle, _ = os.Getwd()
	}
	var err error
	switch fs.Arg(0) {
	case "start":
		err = start(f)
	case "delete":
		err = deleteCmd(f)
	case "":
		err = serve(f)
	default:
		err = fmt.Errorf("unknown command %q", fs.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cradle-shim-vm:", err)
		return 1
	}
	return 0
}

// groupID is the pod the bundle's container belongs to.
func groupID(bundle, id string) (string, *specs.Spec, error) {
	s, err := readSpec(bundle)
	if err != nil {
		return "", nil, err
	}
	for _, k := range []string{ocispec.AnnSandboxID, ocispec.AnnCrioSandboxID} {
		if v := s.Annotations[k]; v != "" {
			return v, s, nil
		}
	}
	return id, s, nil
}

func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decode %s/config.json: %w", bundle, err)
	}
	return &s, nil
}

// podDir is where one pod's shim socket and VM state live: next to the
// -address, which is the daemon's state dir for the handler, named by a
// hash of the address, namespace and pod so that every start of the pod
// finds the same shim.
func podDir(f flags, group string) string {
	sum := sha256.Sum256([]byte(f.address + "\x00" + f.namespace + "\x00" + group))
	return filepath.Join(filepath.Dir(f.address), "vm-"+hex.EncodeToString(sum[:])[:12])
}

func socketPath(dir string) string { return dir + ".sock" }

// start prints the pod shim's address, starting the shim first if it
// is not running: protobuf BootstrapResult after BootstrapParams on
// stdin (containerd 2.3+), JSON otherwise (2.0-2.2). Task API v3.
func start(f flags) error {
	if f.address == "" || f.id == "" {
		return errors.New("start needs -address and -id")
	}
	in, _ := io.ReadAll(os.Stdin)
	var params bootapi.BootstrapParams
	withParams := len(in) > 0 && proto.Unmarshal(in, &params) == nil && params.InstanceID != ""
	group, _, err := groupID(f.bundle, f.id)
	if err != nil {
		return err
	}
	// Bad options fail here, where the daemon sees the message, rather
	// than in the detached shim.
	if _, err := loadOptions(); err != nil {
		return err
	}
	dir := podDir(f, group)
	sock := socketPath(dir)
	addr := "unix://" + sock
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
	} else if err := spawn(f, sock); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(f.bundle, "address"), []byte(addr), 0o600); err != nil {
		return fmt.Errorf("write address: %w", err)
	}
	var out []byte
	if withParams {
		out, err = proto.Marshal(&bootapi.BootstrapResult{Version: 3, Address: addr, Protocol: "ttrpc"})
	} else {
		out, err = json.Marshal(map[string]any{"version": 3, "address": addr, "protocol": "ttrpc"})
	}
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}

// spawn starts the serving shim on a socket made here, in a session of
// its own so that it outlives the caller.
func spawn(f flags, sock string) error {
	if err := os.MkdirAll(filepath.Dir(sock), 0o700); err != nil {
		return err
	}
	_ = os.Remove(sock) // a dead shim's
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen %s: %w", sock, err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		return err
	}
	defer lf.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	args := []string{"-namespace", f.namespace, "-address", f.address, "-publish-binary", f.publishBinary,
		"-id", f.id, "-bundle", f.bundle}
	if f.debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = f.bundle
	cmd.Env = append(os.Environ(), listenFDEnv+"=3")
	cmd.ExtraFiles = []*os.File{lf}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		os.Remove(sock)
		return fmt.Errorf("start shim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(f.bundle, "shim.pid"), []byte(fmt.Sprint(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	return cmd.Process.Release()
}

// deleteCmd cleans up after a dead shim: its qemu died with it
// (Pdeathsig); what is left are the bind mounts into the share, the
// TAP's filters and the pod's state.
func deleteCmd(f flags) error {
	group, s, err := groupID(f.bundle, f.id)
	if err != nil {
		return err
	}
	dir := podDir(f, group)
	var errs []error
	errs = append(errs, unshareContainer(filepath.Join(dir, "share"), f.id))
	if s.Annotations[ocispec.AnnContainerType] == ocispec.ContainerTypeSandbox || group == f.id {
		errs = append(errs, removePod(dir, netnsPath(s)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	out, err := proto.Marshal(&taskv3.DeleteResponse{ExitStatus: 128 + uint32(unix.SIGKILL), ExitedAt: timestamppb.Now()})
	if err != nil {
		return err
	}
	_, err = io.Copy(os.Stdout, bytes.NewReader(out))
	return err
}

// serve is the long-running shim.
func serve(f flags) error {
	fdStr := os.Getenv(listenFDEnv)
	if fdStr == "" {
		return errors.New("no listening socket: run the shim with `start`")
	}
	lf := os.NewFile(3, "listener")
	l, err := net.FileListener(lf)
	lf.Close()
	if err != nil {
		return fmt.Errorf("listener: %w", err)
	}
	logOut := openLog(f.bundle)
	level := slog.LevelInfo
	if f.debug {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level})))
	group, _, err := groupID(f.bundle, f.id)
	if err != nil {
		return err
	}
	svc, err := newService(f, podDir(f, group))
	if err != nil {
		return err
	}
	return svc.run(l)
}

// openLog is the bundle's log FIFO, which the daemon reads; write-only
// and non-blocking, so that a gone reader loses lines, never the shim.
func openLog(bundle string) io.Writer {
	fd, err := unix.Open(filepath.Join(bundle, "log"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return io.Discard
	}
	return dropWriter(fd)
}

// dropWriter writes to a non-blocking fd, dropping what does not fit.
type dropWriter int

func (w dropWriter) Write(p []byte) (int, error) {
	_, _ = unix.Write(int(w), p)
	return len(p), nil
}
