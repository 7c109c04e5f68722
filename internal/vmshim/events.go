package vmshim

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	eventtypes "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// publisher forwards task events to the daemon's events socket
// (TTRPC_ADDRESS), as containerd's shims do. Delivery is best effort: the
// daemon also waits on each task, so an event lost while it restarts
// costs only latency.
type publisher struct {
	addr, ns string

	mu sync.Mutex
	cl *ttrpc.Client
}

func newPublisher(ns string) *publisher {
	return &publisher{addr: os.Getenv("TTRPC_ADDRESS"), ns: ns}
}

// retries are containerd's: +0, +1, +3, +6 s.
var retries = []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}

func (p *publisher) publish(topic string, ev any) {
	if p.addr == "" {
		return
	}
	a, err := typeurl.MarshalAnyToProto(ev)
	if err != nil {
		slog.Warn("encode event", "topic", topic, "error", err)
		return
	}
	req := &eventsapi.ForwardRequest{Envelope: &types.Envelope{Timestamp: timestamppb.Now(), Namespace: p.ns, Topic: topic, Event: a}}
	go func() {
		for _, d := range retries {
			time.Sleep(d)
			if err := p.forward(req); err == nil {
				return
			} else {
				slog.Debug("forward event", "topic", topic, "error", err)
			}
		}
	}()
}

func (p *publisher) forward(req *eventsapi.ForwardRequest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cl == nil {
		conn, err := net.DialTimeout("unix", p.addr, 2*time.Second)
		if err != nil {
			return err
		}
		p.cl = ttrpc.NewClient(conn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := eventsapi.NewTTRPCEventsClient(p.cl).Forward(ctx, req)
	if err != nil {
		p.cl.Close()
		p.cl = nil
	}
	return err
}

// exit publishes a process's exit; id is the exec's for an exec.
func (p *publisher) exit(ctr, id string, pid, status uint32, at time.Time) {
	p.publish("/tasks/exit", &eventtypes.TaskExit{ContainerID: ctr, ID: id, Pid: pid, ExitStatus: status, ExitedAt: timestamppb.New(at)})
}
