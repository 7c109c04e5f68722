// Package container is the container model: its durable record and state.
package container

import (
	"strconv"

	"github.com/cradle-runtime/cradle/internal/store"
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
	// SELinuxLabel is the process label; a level other than the pod's is
	// freed when the container is removed.
	SELinuxLabel string `json:"selinuxLabel,omitempty"`

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

// Machine is the container state machine of the CRI: created, running,
// exited; an exited container stays exited.
var Machine = store.Machine[Record, runtimeapi.ContainerState]{
	Kind:  "container",
	State: func(r *Record) *runtimeapi.ContainerState { return &r.State },
	Edges: map[runtimeapi.ContainerState][]runtimeapi.ContainerState{
		runtimeapi.ContainerState_CONTAINER_CREATED: {runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED},
		runtimeapi.ContainerState_CONTAINER_RUNNING: {runtimeapi.ContainerState_CONTAINER_EXITED},
	},
}

// Container is a persisted record with its operation lock and its exit
// notification. Status reads never take Op, so ContainerStatus never
// waits behind a stop in progress.
type Container struct {
	*store.Object[Record, runtimeapi.ContainerState]
	exited chan struct{}
}

// New wraps a record.
func New(r Record) *Container {
	c := &Container{exited: make(chan struct{})}
	if r.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		close(c.exited)
	}
	c.Object = store.NewObject(r.ID, r, Machine, func(s runtimeapi.ContainerState) {
		if s == runtimeapi.ContainerState_CONTAINER_EXITED {
			close(c.exited) // once: nothing leaves EXITED
		}
	})
	return c
}

// Exited is closed once the container has exited.
func (c *Container) Exited() <-chan struct{} { return c.exited }

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
