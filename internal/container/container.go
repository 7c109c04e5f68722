// Package container is the container model: its durable record and state.
package container

import (
	"strconv"
	"sync"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Record is everything persisted about a container.
type Record struct {
	ID         string                      `json:"id"`
	SandboxID  string                      `json:"sandboxId"`
	Name       string                      `json:"name"` // the reserved name
	Config     *runtimeapi.ContainerConfig `json:"config"`
	Handler    string                      `json:"handler"`
	ImageID    string                      `json:"imageId"`   // "sha256:…", the image ref
	ImageName  string                      `json:"imageName"` // what the config asked for
	Bundle     string                      `json:"bundle"`
	Rootfs     string                      `json:"rootfs"`
	LogPath    string                      `json:"logPath"`
	Infra      bool                        `json:"infra,omitempty"`
	StopSignal string                      `json:"stopSignal,omitempty"`
	// CgroupsPath is the runtime's cgroup, removed by the daemon when the
	// runtime lost track of it (after a reboot).
	CgroupsPath string `json:"cgroupsPath,omitempty"`
	// User is the identity the process runs with, as resolved against the
	// image: ContainerStatus reports it.
	User *User `json:"user,omitempty"`

	State      runtimeapi.ContainerState `json:"state"`
	CreatedAt  int64                     `json:"createdAt"`
	StartedAt  int64                     `json:"startedAt,omitempty"`
	FinishedAt int64                     `json:"finishedAt,omitempty"`
	ExitCode   int32                     `json:"exitCode"`
	Reason     string                    `json:"reason,omitempty"`
	Message    string                    `json:"message,omitempty"`
	Pid        int                       `json:"pid,omitempty"`
	ConmonPid  int                       `json:"conmonPid,omitempty"`
	// ConmonStart tells a live monitor from a PID reused after a reboot.
	ConmonStart uint64 `json:"conmonStart,omitempty"`
}

// Container is a record plus its locks and exit notification.
type Container struct {
	// Op serialises lifecycle operations; status reads never take it, so
	// ContainerStatus never waits behind a stop in progress.
	Op sync.Mutex

	mu     sync.RWMutex
	rec    Record
	exited chan struct{}
}

// New wraps a record.
func New(r Record) *Container {
	c := &Container{rec: r, exited: make(chan struct{})}
	if r.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		close(c.exited)
	}
	return c
}

// Get returns a copy of the record.
func (c *Container) Get() Record {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rec
}

// Update changes the record through persist; on error nothing changes.
func (c *Container) Update(persist func(Record) error, fn func(*Record)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.rec
	fn(&next)
	if err := persist(next); err != nil {
		return err
	}
	wasExited := c.rec.State == runtimeapi.ContainerState_CONTAINER_EXITED
	c.rec = next
	if !wasExited && next.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		close(c.exited)
	}
	return nil
}

// Exited is closed once the container has exited.
func (c *Container) Exited() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.exited
}

// Name is the reserved name of a container, as the kubelet builds it.
func Name(c *runtimeapi.ContainerMetadata, sb *runtimeapi.PodSandboxMetadata) string {
	return "k8s_" + c.GetName() + "_" + sb.GetName() + "_" + sb.GetNamespace() + "_" + sb.GetUid() + "_" + strconv.FormatUint(uint64(c.GetAttempt()), 10)
}

// User is a resolved process identity.
type User struct {
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}
