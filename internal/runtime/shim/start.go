package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	taskv2 "github.com/containerd/containerd/api/runtime/task/v2"
	"github.com/containerd/fifo"
	"github.com/cradle-runtime/cradle/internal/runtime"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Files the backend keeps in a container's bundle, next to the ones the
// shim writes there (address, init.pid, log.json, options.json, ...).
const (
	bootstrapFile = "bootstrap.json" // how to reach the shim; containerd 2.x's format
	ioFile        = "io.json"        // what Restore needs to resume the container's I/O
	shimLogFifo   = "log"            // the shim's own log; it requires the FIFO
)

const (
	startTimeout  = time.Minute
	deleteTimeout = 30 * time.Second
)

// bootstrap is what a shim's start reported.
type bootstrap struct {
	Version  int    `json:"version"`
	Address  string `json:"address"`
	Protocol string `json:"protocol"`
}

func writeBootstrap(b runtime.Bundle, bs bootstrap) error {
	data, err := json.Marshal(bs)
	if err != nil {
		return fmt.Errorf("encode %s: %w", bootstrapFile, err)
	}
	if err := os.WriteFile(b.File(bootstrapFile), data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", bootstrapFile, err)
	}
	return nil
}

func readBootstrap(b runtime.Bundle) (bootstrap, error) {
	var bs bootstrap
	data, err := os.ReadFile(b.File(bootstrapFile))
	if err != nil {
		return bs, fmt.Errorf("read %s: %w", bootstrapFile, err)
	}
	if err := json.Unmarshal(data, &bs); err != nil {
		return bs, fmt.Errorf("decode %s: %w", b.File(bootstrapFile), err)
	}
	return bs, nil
}

// grpcAddress is the -address every shim of the runtime gets. No
// containerd listens there: the shim only hashes it (with the namespace
// and the group) into its socket's name, so it must never change.
func (r *Runtime) grpcAddress() string { return r.opts.StateDir + "/containerd.sock" }

// shimCmd is the shim binary run for one action, from the bundle dir as
// the shim expects.
func (r *Runtime) shimCmd(ctx context.Context, b runtime.Bundle, id string, extra ...string) *exec.Cmd {
	args := []string{"-namespace", r.opts.Namespace, "-address", r.grpcAddress(),
		"-publish-binary", "/bin/false", "-id", id}
	cmd := exec.CommandContext(ctx, r.shimPath, append(args, extra...)...)
	cmd.Dir = b.Dir()
	cmd.Env = append(append(os.Environ(), r.opts.Env...),
		"TTRPC_ADDRESS="+r.eventsPath(), // 2.x shims want it even with BootstrapParams
		"GRPC_ADDRESS="+r.grpcAddress(),
		"NAMESPACE="+r.opts.Namespace,
		"MAX_SHIM_VERSION=2",
	)
	// The shim must not get the daemon's terminal signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A shim that keeps our stdout must not hang the start.
	cmd.WaitDelay = 2 * time.Second
	return cmd
}

// startShim runs `shim start` for container id, which starts the group's
// shim or finds it running, and returns how to reach it. Every shim is
// first sent BootstrapParams, as containerd 2.4 does (2.4 shims require
// them); a 1.x shim reads its stdin as an Any and refuses them, and is
// then started the old way, which later starts use at once.
func (r *Runtime) startShim(ctx context.Context, b runtime.Bundle, id string) (bootstrap, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if !r.legacyStart.Load() {
		params := &bootapi.BootstrapParams{
			InstanceID:             id,
			Namespace:              r.opts.Namespace,
			LogLevel:               bootapi.LogLevel_LOG_LEVEL_INFO,
			ContainerdVersion:      "cradle",
			ContainerdTtrpcAddress: r.eventsPath(),
			ContainerdGrpcAddress:  r.grpcAddress(),
			ContainerdBinary:       "/bin/false",
		}
		if o := r.runcOptions(); o != nil {
			if err := params.AddExtension(o); err != nil {
				return bootstrap{}, fmt.Errorf("shim start: runc options: %w", err)
			}
		}
		in, err := proto.Marshal(params)
		if err != nil {
			return bootstrap{}, fmt.Errorf("shim start: encode bootstrap params: %w", err)
		}
		out, stderr, err := r.runStart(ctx, b, id, in)
		if err == nil {
			return parseStart(out)
		}
		if !strings.Contains(stderr, "type with url") {
			return bootstrap{}, err
		}
		slog.Debug("shim refused bootstrap params; starting it the 1.x way", "runtime", r.name, "container", id)
		r.legacyStart.Store(true)
		go r.reapRefusedShim()
	}
	out, _, err := r.runStart(ctx, b, id, nil)
	if err != nil {
		return bootstrap{}, err
	}
	return parseStart(out)
}

func (r *Runtime) runStart(ctx context.Context, b runtime.Bundle, id string, stdin []byte) ([]byte, string, error) {
	cmd := r.shimCmd(ctx, b, id, "start")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runOwn(cmd); err != nil {
		msg := strings.TrimSpace(stderr.String())
		return nil, msg, fmt.Errorf("%w: %s start for %s: %w: %s", runtime.ErrMonitorStart, r.shimPath, id, err, msg)
	}
	return stdout.Bytes(), stderr.String(), nil
}

// reapRefusedShim reaps the shim a refused start left: a 1.x shim spawns
// it before reading its stdin and kills it on the error, and the start
// process exits without waiting, so the dead shim is the daemon's (the
// subreaper's) child, and its PID was written nowhere. It is found by
// name among the daemon's zombie children.
func (r *Runtime) reapRefusedShim() {
	comm := filepath.Base(r.shimPath)
	if len(comm) > 15 { // the kernel keeps 15 bytes of a process's name
		comm = comm[:15]
	}
	reapZombie(func(_ int, c string) bool { return c == comm })
}

// waited are the shim subcommands (start, delete) a caller is waiting
// for: they bear the shim's name too, and reapZombie must leave them to
// their cmd.Wait. The lock spans a start and its registration, so no
// zombie of a running command is ever seen unregistered.
var waited = struct {
	sync.Mutex
	pids map[int]bool
}{pids: map[int]bool{}}

// runOwn is cmd.Run for a shim subcommand, kept from reapZombie.
func runOwn(cmd *exec.Cmd) error {
	waited.Lock()
	err := cmd.Start()
	if err == nil {
		waited.pids[cmd.Process.Pid] = true
	}
	waited.Unlock()
	if err != nil {
		return err
	}
	err = cmd.Wait()
	waited.Lock()
	delete(waited.pids, cmd.Process.Pid)
	waited.Unlock()
	return err
}

// reapZombie reaps the first zombie child of the daemon that match
// accepts, waiting up to two seconds for one to appear. Only a process
// already dead, and not one a caller waits for (runOwn), is reaped, so no
// one else's wait loses a status it needs.
func reapZombie(match func(pid int, comm string) bool) {
	self := strconv.Itoa(os.Getpid())
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			open, end := bytes.IndexByte(st, '('), bytes.LastIndexByte(st, ')')
			if open < 0 || end < open {
				continue
			}
			f := strings.Fields(string(st[end+1:]))
			if len(f) > 1 && f[0] == "Z" && f[1] == self && match(pid, string(st[open+1:end])) {
				waited.Lock()
				got := 0
				if !waited.pids[pid] {
					var ws unix.WaitStatus
					got, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
				}
				waited.Unlock()
				if got == pid {
					return
				}
			}
		}
	}
}

// parseStart reads start's reply as containerd 2.4 does: a protobuf
// BootstrapResult (2.3+), JSON (2.0 to 2.2), else a plain address (1.x,
// task API v2).
func parseStart(out []byte) (bootstrap, error) {
	var res bootapi.BootstrapResult
	if err := proto.Unmarshal(out, &res); err == nil && res.Address != "" && res.Version > 0 {
		return checkBootstrap(bootstrap{Version: int(res.Version), Address: res.Address, Protocol: res.Protocol})
	}
	var bs bootstrap
	if err := json.Unmarshal(out, &bs); err == nil && bs.Address != "" {
		return checkBootstrap(bs)
	}
	addr := strings.TrimSpace(string(out))
	if addr == "" {
		return bootstrap{}, errors.New("shim start printed no address")
	}
	return checkBootstrap(bootstrap{Version: 2, Address: addr, Protocol: "ttrpc"})
}

func checkBootstrap(bs bootstrap) (bootstrap, error) {
	if bs.Protocol == "" {
		bs.Protocol = "ttrpc"
	}
	if bs.Protocol != "ttrpc" {
		return bs, fmt.Errorf("shim at %s speaks %q; only ttrpc is supported", bs.Address, bs.Protocol)
	}
	if bs.Version == 0 {
		bs.Version = 2
	}
	return bs, nil
}

// deleteShim runs `shim delete` for a container whose shim died: it kills
// what is left of the container, removes the runtime's state and unmounts
// what the shim mounted, and reports the exit.
func (r *Runtime) deleteShim(ctx context.Context, b runtime.Bundle, id string) (exitStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, deleteTimeout)
	defer cancel()
	cmd := r.shimCmd(ctx, b, id, "-bundle", b.Dir(), "delete")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runOwn(cmd); err != nil {
		return exitStatus{}, fmt.Errorf("%s delete for %s: %w: %s", r.shimPath, id, err, strings.TrimSpace(stderr.String()))
	}
	var resp taskv2.DeleteResponse
	if err := proto.Unmarshal(stdout.Bytes(), &resp); err != nil {
		return exitStatus{}, fmt.Errorf("decode %s delete reply for %s: %w", r.shimPath, id, err)
	}
	return exitFrom(resp.Pid, resp.ExitStatus, resp.ExitedAt), nil
}

// openShimLog creates the bundle's log FIFO, which a shim opens write-only
// at start and blocks on without a reader, and copies it into the daemon's
// log. Read-write, so it neither blocks to open nor ever sees EOF.
func openShimLog(b runtime.Bundle, attrs ...any) (io.Closer, error) {
	f, err := fifo.OpenFifo(context.Background(), b.File(shimLogFifo), syscall.O_RDWR|syscall.O_CREAT|syscall.O_NONBLOCK, 0o700)
	if err != nil {
		return nil, fmt.Errorf("open shim log fifo: %w", err)
	}
	go copyShimLog(f, attrs)
	return f, nil
}

var (
	logrusLevel = regexp.MustCompile(`\blevel=(\w+)`)
	logrusMsg   = regexp.MustCompile(`\bmsg="((?:[^"\\]|\\.)*)"`)
)

// copyShimLog logs each line the shim writes (logrus text). A shim's info
// is the daemon's debug: every shim start says which plugins it loads.
func copyShimLog(r io.Reader, attrs []any) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		level := slog.LevelDebug
		if m := logrusLevel.FindStringSubmatch(line); m != nil {
			switch m[1] {
			case "warning", "warn":
				level = slog.LevelWarn
			case "error", "fatal", "panic":
				level = slog.LevelError
			}
		}
		msg, rec := line, append(attrs, "line", line)
		if m := logrusMsg.FindStringSubmatch(line); m != nil {
			if s, err := strconv.Unquote(`"` + m[1] + `"`); err == nil {
				msg, rec = s, attrs
			}
		}
		slog.Log(context.Background(), level, "shim: "+msg, rec...)
	}
}
