package server

import (
	"context"
	"log/slog"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamPage bounds one message of a streamed list, so that a node with
// very many pods or images never hits gRPC's message size limit, which is
// why the kubelet streams these lists.
const streamPage = 500

func sendPages[T any](items []T, send func([]T) error) error {
	for len(items) > streamPage {
		if err := send(items[:streamPage]); err != nil {
			return err
		}
		items = items[streamPage:]
	}
	if len(items) == 0 {
		return nil
	}
	return send(items)
}

// StreamPodSandboxes is ListPodSandbox in pages.
func (s *Server) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	resp, err := s.ListPodSandbox(stream.Context(), &runtimeapi.ListPodSandboxRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.GetItems(), func(p []*runtimeapi.PodSandbox) error {
		return stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: p})
	})
}

// StreamContainers is ListContainers in pages.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	resp, err := s.ListContainers(stream.Context(), &runtimeapi.ListContainersRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.GetContainers(), func(p []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: p})
	})
}

// StreamImages is ListImages in pages.
func (s *Server) StreamImages(req *runtimeapi.StreamImagesRequest, stream runtimeapi.ImageService_StreamImagesServer) error {
	resp, err := s.ListImages(stream.Context(), &runtimeapi.ListImagesRequest{Filter: req.GetFilter()})
	if err != nil {
		return err
	}
	return sendPages(resp.GetImages(), func(p []*runtimeapi.Image) error {
		return stream.Send(&runtimeapi.StreamImagesResponse{Images: p})
	})
}

// UpdateRuntimeConfig takes the node's pod CIDR from the kubelet. The CNI
// config owns pod addressing here, as with CRI-O, so it is only logged.
func (s *Server) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
		slog.Info("kubelet reported the pod CIDR; the CNI config decides pod addresses", "pod_cidr", cidr)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}
