// Package observe is how the domain packages report what the operator
// watches: Observer for what the metrics count (they call it without
// knowing of Prometheus; a daemon without metrics passes Nop), and
// StartSpan for the trace spans of a call's steps (OpenTelemetry's API,
// which is a no-op until the daemon installs an exporter).
package observe

import "time"

// CNI operations, as labelled.
const (
	CNIAdd = "ADD"
	CNIDel = "DEL"
)

// Observer is told of the events the operator's metrics count. Its methods
// must be cheap and safe for concurrent use.
type Observer interface {
	// PodStarted: a RunPodSandbox that made a pod ready, and how long it took.
	PodStarted(d time.Duration)
	// ContainerStarted: a StartContainer that made a container run.
	ContainerStarted(d time.Duration)
	// ImagePulled: one pull from registry (a host name, never a whole
	// reference: the label must stay bounded), the bytes it transferred,
	// its duration, and its error if it failed.
	ImagePulled(registry string, bytes uint64, d time.Duration, err error)
	// OOMKilled: a container's recorded exit was an OOM kill.
	OOMKilled()
	// ExecSyncTimedOut: an ExecSync outlived its timeout and was killed.
	ExecSyncTimedOut()
	// CNI: one CNI ADD or DEL of a whole plugin chain.
	CNI(op string, d time.Duration, err error)
}

// Nop observes nothing.
type Nop struct{}

func (Nop) PodStarted(time.Duration)                         {}
func (Nop) ContainerStarted(time.Duration)                   {}
func (Nop) ImagePulled(string, uint64, time.Duration, error) {}
func (Nop) OOMKilled()                                       {}
func (Nop) ExecSyncTimedOut()                                {}
func (Nop) CNI(string, time.Duration, error)                 {}

// Or returns o, or Nop when o is nil, so callers never check.
func Or(o Observer) Observer {
	if o == nil {
		return Nop{}
	}
	return o
}
