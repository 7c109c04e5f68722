// Package runtime is the seam between the CRI server and the backends that
// run containers: the Runtime interface every backend implements, the
// Bundle that owns a container's files on disk, and the reaping of the
// processes the daemon adopts as a child subreaper.
package runtime

import (
	"context"
	"errors"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	// ErrNotExist means the runtime has no state for the container.
	ErrNotExist = errors.New("container does not exist in the runtime")
	// ErrExecTimeout means an exec outlived its timeout and was killed.
	ErrExecTimeout = errors.New("exec timed out")
	// ErrMonitorStart means the handler's shim refused to start, as for
	// a bad handler option: the node, not the request, must change.
	ErrMonitorStart = errors.New("the runtime handler's shim did not start")
)

// Runtime is one configured runtime handler. Containers are addressed by
// ID; their bundle is written (Bundle.WriteSpec) before Create.
type Runtime interface {
	// Create creates the container from its bundle; it returns once the
	// container exists in the runtime, not started.
	Create(ctx context.Context, o CreateOpts) (*Created, error)
	Start(ctx context.Context, id string) error
	// Kill signals the container's init, or every process with all.
	Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error
	// Delete removes the runtime's state and the monitor's files for the
	// container; a container the runtime does not know is not an error.
	Delete(ctx context.Context, id string) error
	State(ctx context.Context, id string) (*State, error)
	// Exited reports the container's exit once there is one: recorded by
	// its monitor, or concluded because the monitor is gone and the
	// runtime has the container stopped. It is how exits are reconciled
	// after a restart and when an exit event may have been missed.
	Exited(ctx context.Context, h Handle) (Exit, bool)
	// Exec runs a process in the container and waits for it; it returns
	// the exit code (128+signal when killed).
	Exec(ctx context.Context, o ExecOpts) (int, error)
	Attach(ctx context.Context, o AttachOpts) error
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	// ReopenLog makes the container's log writer reopen its file.
	ReopenLog(ctx context.Context, h Handle) error
	// Restore picks up a container that outlived the daemon: after a
	// restart, before any other call for it. The backend reconnects to
	// its monitor and resumes what the daemon itself did for it (such as
	// writing its log); a container it cannot reach is not an error here,
	// Exited then concludes its exit.
	Restore(ctx context.Context, h Handle) error
	// Features is what the runtime supports, asked of it once.
	Features() Features
	// Check reports why the runtime cannot serve, or nil.
	Check() error
}

// Handle names one container to a runtime, with what the daemon recorded
// at its creation.
type Handle struct {
	ID      string
	Bundle  Bundle
	LogPath string // where the container's CRI log goes
	// Monitor identifies the process that watches the container (conmon
	// or a shim): its PID and start time tell it from a reused PID.
	Monitor Process
}

// Process is a PID with its start time (clock ticks since boot).
type Process struct {
	Pid   int
	Start uint64
}

// CreateOpts describe one container to create.
type CreateOpts struct {
	ID         string
	Name       string
	Bundle     Bundle
	LogPath    string
	Terminal   bool
	Stdin      bool
	StdinOnce  bool
	LogSizeMax int64
}

// Created is what a successful create returns.
type Created struct {
	Pid     int     // the container's init
	Monitor Process // conmon or the shim
}

// State is the runtime's view of one container.
type State struct {
	Status string `json:"status"` // created, running, stopped
	Pid    int    `json:"pid"`
}

// Exit is a container's exit.
type Exit struct {
	ID        string
	Code      int32
	Finished  time.Time
	OOMKilled bool
	Message   string // why the exit was concluded rather than reported
}

// TermSize is a terminal size in character cells.
type TermSize struct{ Width, Height uint16 }

// ExecOpts describe one process to run in a running container.
type ExecOpts struct {
	ID      string
	Bundle  Bundle // its spec is the template for the process
	Args    []string
	Tty     bool
	Stdin   io.Reader // nil: /dev/null
	Stdout  io.Writer // nil: discarded
	Stderr  io.Writer // nil: discarded; unused with Tty
	Resize  <-chan TermSize
	Timeout time.Duration // 0: none
}

// AttachOpts describe one attach to a container's main process.
type AttachOpts struct {
	ID        string
	Bundle    Bundle
	Tty       bool // the container has a terminal
	StdinOnce bool // the container's stdin closes with the first client's
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	Resize    <-chan TermSize
}

// Features is what a runtime supports.
type Features struct {
	RecursiveReadOnly bool // the "rro" mount option
	IDMappedMounts    bool // idmap mount extension
}
