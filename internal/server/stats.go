package server

import (
	"context"
	"time"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	"github.com/cradle-runtime/cradle/internal/stats"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The stats RPCs serve from the stats collector's cache (stats_source.go
// tells it what exists).

func (s *Server) containerStats(r container.Record) *runtimeapi.ContainerStats {
	attrs := &runtimeapi.ContainerAttributes{
		Id: r.ID, Metadata: r.Config.GetMetadata(), Labels: r.Config.GetLabels(), Annotations: r.Config.GetAnnotations(),
	}
	return stats.ContainerStats(attrs, s.stats.Container(statsContainer(r)))
}

func (s *Server) podStats(sr sandbox.Record) *runtimeapi.PodSandboxStats {
	var ctrs []*runtimeapi.ContainerStats
	for _, c := range s.lc.ContainersOf(sr.ID, false) {
		if r := c.Get(); r.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			ctrs = append(ctrs, s.containerStats(r))
		}
	}
	cfg := sr.Config
	attrs := &runtimeapi.PodSandboxAttributes{
		Id: sr.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
	}
	return stats.PodStats(attrs, s.stats.Pod(s.statsPod(sr)), ctrs)
}

// ContainerStats reports one container, running or not.
func (s *Server) ContainerStats(_ context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.lc.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(c.Get())}, nil
}

// ListContainerStats reports the running containers matching the filter.
func (s *Server) ListContainerStats(_ context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	return &runtimeapi.ListContainerStatsResponse{Stats: s.listContainerStats(req.GetFilter())}, nil
}

func (s *Server) listContainerStats(filter *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	f := stats.Filter{ID: filter.GetId(), PodSandboxID: filter.GetPodSandboxId(), Labels: filter.GetLabelSelector()}
	var out []*runtimeapi.ContainerStats
	for _, c := range s.lc.Containers().List() {
		r := c.Get()
		if r.Infra || r.State != runtimeapi.ContainerState_CONTAINER_RUNNING || !f.Match(r.ID, r.SandboxID, r.Config.GetLabels()) {
			continue
		}
		out = append(out, s.containerStats(r))
	}
	return out
}

// PodSandboxStats reports one pod with its running containers.
func (s *Server) PodSandboxStats(_ context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, crierr.Invalid("pod_sandbox_id", "is empty")
	}
	sb, err := s.lc.Sandboxes().Get(req.GetPodSandboxId())
	if err != nil {
		return nil, crierr.ToStatus(err, "pod_sandbox_id")
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb.Get())}, nil
}

// ListPodSandboxStats reports the ready pods matching the filter.
func (s *Server) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: s.listPodStats(req.GetFilter())}, nil
}

func (s *Server) readyPods(filter *runtimeapi.PodSandboxStatsFilter) []sandbox.Record {
	f := stats.Filter{ID: filter.GetId(), Labels: filter.GetLabelSelector()}
	var out []sandbox.Record
	for _, sb := range s.lc.Sandboxes().List() {
		if sr := sb.Get(); sr.State == sandbox.Ready && f.Match(sr.ID, "", sr.Config.GetLabels()) {
			out = append(out, sr)
		}
	}
	return out
}

func (s *Server) listPodStats(filter *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	var out []*runtimeapi.PodSandboxStats
	for _, sr := range s.readyPods(filter) {
		out = append(out, s.podStats(sr))
	}
	return out
}

// ListMetricDescriptors lists the cadvisor-style metrics we report.
func (s *Server) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: stats.Descriptors()}, nil
}

// ListPodSandboxMetrics reports every ready pod's metrics and those of its
// running containers, from the cache.
func (s *Server) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: s.podMetrics()}, nil
}

func (s *Server) podMetrics() []*runtimeapi.PodSandboxMetrics {
	var out []*runtimeapi.PodSandboxMetrics
	for _, sr := range s.readyPods(nil) {
		meta := sr.Config.GetMetadata()
		pod := stats.Labels{ID: sr.ID, Name: sr.Name, Namespace: meta.GetNamespace(), Pod: meta.GetName()}
		pm := &runtimeapi.PodSandboxMetrics{PodSandboxId: sr.ID, Metrics: stats.Metrics(pod, unixTime(sr.CreatedAt), s.stats.Pod(s.statsPod(sr)))}
		for _, c := range s.lc.ContainersOf(sr.ID, false) {
			r := c.Get()
			if r.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
				continue
			}
			l := pod
			l.Container, l.ID, l.Image, l.Name = r.Config.GetMetadata().GetName(), r.ID, r.ImageName, r.Name
			pm.ContainerMetrics = append(pm.ContainerMetrics, &runtimeapi.ContainerMetrics{
				ContainerId: r.ID, Metrics: stats.Metrics(l, unixTime(r.StartedAt), s.stats.Container(statsContainer(r))),
			})
		}
		out = append(out, pm)
	}
	return out
}

// unixTime converts a record's nanosecond timestamp; 0 is unknown.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// The streaming variants send everything in one message: the lists are
// built from the cache and a node's pods fit well within a message.

// StreamContainerStats is ListContainerStats as a stream.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream runtimeapi.RuntimeService_StreamContainerStatsServer) error {
	if items := s.listContainerStats(req.GetFilter()); len(items) > 0 {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: items})
	}
	return nil
}

// StreamPodSandboxStats is ListPodSandboxStats as a stream.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxStatsServer) error {
	if items := s.listPodStats(req.GetFilter()); len(items) > 0 {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: items})
	}
	return nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics as a stream.
func (s *Server) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxMetricsServer) error {
	if items := s.podMetrics(); len(items) > 0 {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: items})
	}
	return nil
}
