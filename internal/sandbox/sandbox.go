// Package sandbox is the pod sandbox model: its durable record and the
// state machine that RunPodSandbox, Stop and Remove move it through.
package sandbox

import (
	"strconv"

	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/network"
	"github.com/cradle-runtime/cradle/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// State of a sandbox. CREATING records exist only while RunPodSandbox runs
// or after a crash in it; recovery finishes them as NOTREADY.
type State string

const (
	Creating State = "CREATING"
	Ready    State = "READY"
	NotReady State = "NOTREADY"
)

// Record is everything persisted about a sandbox. Each allocation is
// recorded before the next one starts so a crash leaves enough to clean up.
type Record struct {
	ID        string                       `json:"id"`
	Name      string                       `json:"name"` // the reserved name
	Config    *runtimeapi.PodSandboxConfig `json:"config"`
	Handler   string                       `json:"handler"`
	State     State                        `json:"state"`
	CreatedAt int64                        `json:"createdAt"`

	Dir   string `json:"dir"` // per-pod files under the runroot
	NetNS string `json:"netns,omitempty"`
	IPCNS string `json:"ipcns,omitempty"`
	UTSNS string `json:"utsns,omitempty"`
	// UserNS is the pod's pinned user namespace, which owns its other
	// namespaces; the mappings are what runtimes put in the spec.
	UserNS       string        `json:"userns,omitempty"`
	UIDMappings  []netns.IDMap `json:"uidMappings,omitempty"`
	GIDMappings  []netns.IDMap `json:"gidMappings,omitempty"`
	ShmPath      string        `json:"shm,omitempty"`
	HostsFile    string        `json:"hosts,omitempty"`
	ResolvFile   string        `json:"resolv,omitempty"`
	HostnameFile string        `json:"hostnameFile,omitempty"`

	Network        *network.Attachment `json:"network,omitempty"`
	NetworkStopped bool                `json:"networkStopped,omitempty"`

	// NRIStopped: plugins were told the pod stopped; a repeated
	// StopPodSandbox must not tell them again.
	NRIStopped bool `json:"nriStopped,omitempty"`

	// SELinuxLabel is the pod's process label ("" without SELinux): its
	// containers share its MCS level, freed when the pod is removed.
	SELinuxLabel string `json:"selinuxLabel,omitempty"`

	InfraID  string `json:"infraId,omitempty"`
	InfraPid int    `json:"infraPid,omitempty"`
	// PIDHolder: InfraPid is the pod's PID holder (netns.Manager), not a
	// container.
	PIDHolder bool `json:"pidHolder,omitempty"`
}

// Machine is the sandbox state machine: a pod is created, becomes ready,
// and is stopped; nothing comes back from NOTREADY.
var Machine = store.Machine[Record, State]{
	Kind:  "sandbox",
	State: func(r *Record) *State { return &r.State },
	Edges: map[State][]State{
		Creating: {Ready, NotReady},
		Ready:    {NotReady},
	},
}

// Sandbox is a persisted record with its operation lock; its Op
// serialises lifecycle operations (run, stop, remove) on the pod.
type Sandbox struct {
	*store.Object[Record, State]
}

// New wraps a record.
func New(r Record) *Sandbox { return &Sandbox{store.NewObject(r.ID, r, Machine, nil)} }

// HostNetwork reports whether the pod uses the node's network namespace.
func HostNetwork(c *runtimeapi.PodSandboxConfig) bool {
	return c.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

// HostIPC reports whether the pod uses the node's IPC namespace.
func HostIPC(c *runtimeapi.PodSandboxConfig) bool {
	return c.GetLinux().GetSecurityContext().GetNamespaceOptions().GetIpc() == runtimeapi.NamespaceMode_NODE
}

// HostPID reports whether the pod uses the node's PID namespace.
func HostPID(c *runtimeapi.PodSandboxConfig) bool {
	return c.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_NODE
}

// SharedPID reports whether the pod's containers share one PID namespace,
// held by an infra process.
func SharedPID(c *runtimeapi.PodSandboxConfig) bool {
	return c.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() == runtimeapi.NamespaceMode_POD
}

// Name is the name reserved for a pod: unique per metadata, as the kubelet
// derives it, so a retry finds the first attempt.
func Name(m *runtimeapi.PodSandboxMetadata) string {
	return "k8s_POD_" + m.GetName() + "_" + m.GetNamespace() + "_" + m.GetUid() + "_" + strconv.FormatUint(uint64(m.GetAttempt()), 10)
}
