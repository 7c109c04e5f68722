// Package api is the protocol between cradle-shim-vm (on the host) and
// cradle-vm-agent (the guest's /init): ttrpc over a virtio-serial port,
// each request and reply one JSON document in a protobuf BytesValue, so
// the protocol needs no generated code and both sides share these types.
package api

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Service is the ttrpc service name the agent registers.
const Service = "cradle.vm.agent.v1.Agent"

// PortName is the virtio-serial port's name (qemu virtserialport,name=);
// the guest finds its device under /sys/class/virtio-ports.
const PortName = "cradle.agent"

// ShareTag is the 9p mount tag of the host directory holding the pod's
// container root filesystems and files.
const ShareTag = "cradleshare"

// ProbeMarker is what the agent prints on the console, then powers off,
// when the kernel command line has cradle.probe (the KVM probe boot).
const ProbeMarker = "cradle-vm-agent: probe ok"

// GuestRuntime is where the initramfs puts the guest's OCI runtime (the
// host's crun or runc, which take the same commands).
const GuestRuntime = "/usr/bin/oci-runtime"

// Method names.
const (
	MPing            = "Ping"
	MSetupNetwork    = "SetupNetwork"
	MCreateContainer = "CreateContainer"
	MStart           = "Start"
	MSignal          = "Signal"
	MWait            = "Wait"
	MReadOutput      = "ReadOutput"
	MWriteStdin      = "WriteStdin"
	MCloseStdin      = "CloseStdin"
	MDelete          = "Delete"
	MShutdown        = "Shutdown"
)

// Empty is the request or reply of methods that carry nothing.
type Empty struct{}

// PingReply says the agent is up and which kernel the guest runs.
type PingReply struct {
	KernelRelease string  `json:"kernelRelease"`
	UptimeSeconds float64 `json:"uptimeSeconds"` // guest uptime when the agent answered
	AgentSeconds  float64 `json:"agentSeconds"`  // guest uptime when the agent's init began
}

// Interface is one guest NIC, found by MAC.
type Interface struct {
	MAC   string   `json:"mac"`
	Name  string   `json:"name"`  // the name to give it (eth0)
	Addrs []string `json:"addrs"` // CIDR
	MTU   int      `json:"mtu,omitempty"`
}

// Route is a route over one of the interfaces; an empty Dst is the default.
type Route struct {
	Dst   string `json:"dst,omitempty"`
	Gw    string `json:"gw,omitempty"`
	Iface string `json:"iface"`
}

// Network is the pod network as CNI left it in the pod's netns.
type Network struct {
	Hostname   string      `json:"hostname,omitempty"`
	Interfaces []Interface `json:"interfaces"`
	Routes     []Route     `json:"routes"`
}

// CreateContainerRequest makes a runc bundle in the guest. The rootfs is
// a directory of the 9p share; Spec is the container's OCI config.json,
// which the agent adapts to the guest.
type CreateContainerRequest struct {
	ID     string          `json:"id"`
	Rootfs string          `json:"rootfs"` // relative to the share
	Spec   json.RawMessage `json:"spec"`
}

// StartRequest starts a process: a container's init (ExecID empty) with
// runc run, or with ExecID a process in it with runc exec, whose Process
// is an OCI process (JSON). Without a container ID, Args run in the
// guest itself (diagnostics).
type StartRequest struct {
	ID       string          `json:"id"`
	ExecID   string          `json:"execId,omitempty"`
	Process  json.RawMessage `json:"process,omitempty"`
	Args     []string        `json:"args,omitempty"`
	Stdin    bool            `json:"stdin,omitempty"`
	Terminal bool            `json:"terminal,omitempty"`
}

// StartReply is the started process's PID in the guest.
type StartReply struct {
	Pid int `json:"pid"`
}

// ProcessRef names a process: a container's init or one of its execs.
type ProcessRef struct {
	ID     string `json:"id"`
	ExecID string `json:"execId,omitempty"`
}

// SignalRequest signals a process (All: every process of the container).
type SignalRequest struct {
	ProcessRef
	Signal int  `json:"signal"`
	All    bool `json:"all,omitempty"`
}

// WaitReply is a process's exit.
type WaitReply struct {
	ExitStatus int   `json:"exitStatus"`
	ExitedAtNs int64 `json:"exitedAtNs"` // guest wall clock
}

// ReadOutputRequest asks for the next chunk of a stream: it blocks until
// there is data or the stream ends.
type ReadOutputRequest struct {
	ProcessRef
	Stream string `json:"stream"` // "stdout" or "stderr"
}

// ReadOutputReply is a chunk; EOF ends the stream.
type ReadOutputReply struct {
	Data []byte `json:"data,omitempty"`
	EOF  bool   `json:"eof,omitempty"`
}

// WriteStdinRequest writes to a process's stdin.
type WriteStdinRequest struct {
	ProcessRef
	Data []byte `json:"data"`
}

// Handler serves one method: it decodes its request with decode.
type Handler func(ctx context.Context, decode func(any) error) (any, error)

// Register serves handlers as the agent service on srv.
func Register(srv *ttrpc.Server, handlers map[string]Handler) {
	methods := map[string]ttrpc.Method{}
	for name, h := range handlers {
		methods[name] = func(ctx context.Context, unmarshal func(any) error) (any, error) {
			var in wrapperspb.BytesValue
			if err := unmarshal(&in); err != nil {
				return nil, err
			}
			decode := func(v any) error {
				if len(in.Value) == 0 {
					return nil
				}
				if err := json.Unmarshal(in.Value, v); err != nil {
					// A malformed request is the caller's fault, whichever method.
					return status.Errorf(codes.InvalidArgument, "decode %s request: %v", name, err)
				}
				return nil
			}
			out, err := h(ctx, decode)
			if err != nil {
				return nil, err
			}
			data, err := json.Marshal(out)
			if err != nil {
				return nil, fmt.Errorf("encode %s reply: %w", name, err)
			}
			return &wrapperspb.BytesValue{Value: data}, nil
		}
	}
	srv.RegisterService(Service, &ttrpc.ServiceDesc{Methods: methods})
}

// Client calls the agent.
type Client struct{ c *ttrpc.Client }

// NewClient wraps a ttrpc connection to the agent.
func NewClient(c *ttrpc.Client) *Client { return &Client{c: c} }

// Close closes the connection.
func (c *Client) Close() error { return c.c.Close() }

// Call sends req (nil: none) to method and decodes the reply into resp
// (nil: ignored). Errors keep the agent's gRPC status.
func (c *Client) Call(ctx context.Context, method string, req, resp any) error {
	in := &wrapperspb.BytesValue{}
	if req != nil {
		data, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", method, err)
		}
		in.Value = data
	}
	var out wrapperspb.BytesValue
	if err := c.c.Call(ctx, Service, method, in, &out); err != nil {
		return err
	}
	if resp == nil || len(out.Value) == 0 {
		return nil
	}
	if err := json.Unmarshal(out.Value, resp); err != nil {
		return fmt.Errorf("decode %s reply: %w", method, err)
	}
	return nil
}
