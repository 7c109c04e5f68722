package server

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/cradle-runtime/cradle/internal/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func containerStatus(r container.Record) *runtimeapi.ContainerStatus {
	cfg := r.Config
	st := &runtimeapi.ContainerStatus{
		Id: r.ID, Metadata: cfg.GetMetadata(), State: r.State,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		ExitCode: r.ExitCode, Reason: r.Reason, Message: r.Message,
		Image: reportedImage(cfg.GetImage()), ImageRef: r.ImageID, ImageId: r.ImageID,
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
		Mounts: cfg.GetMounts(), LogPath: r.LogPath,
		Resources: &runtimeapi.ContainerResources{Linux: cfg.GetLinux().GetResources()},
	}
	if u := r.User; u != nil {
		groups := make([]int64, 0, len(u.Groups))
		for _, g := range u.Groups {
			groups = append(groups, int64(g))
		}
		slices.Sort(groups)
		st.User = &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(u.UID), Gid: int64(u.GID), SupplementalGroups: slices.Compact(groups),
		}}
	}
	return st
}

// reportedImage is the image a container status names: the one the user
// asked for. The kubelet creates containers from the image's ID and passes
// the pod's image name as user_specified_image; it shows status.image in the
// pod status and compares it with the pod spec (an image update of a
// restartable init container waits for the new name to show).
func reportedImage(spec *runtimeapi.ImageSpec) *runtimeapi.ImageSpec {
	if spec.GetUserSpecifiedImage() == "" {
		return spec
	}
	return &runtimeapi.ImageSpec{
		Image: spec.GetUserSpecifiedImage(), UserSpecifiedImage: spec.GetUserSpecifiedImage(),
		Annotations: spec.GetAnnotations(), RuntimeHandler: spec.GetRuntimeHandler(),
	}
}

// ContainerStatus reads the record only: it never waits behind a stop.
func (s *Server) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.lc.Container(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := c.Get()
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(r)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"pid": r.Pid, "conmonPid": r.ConmonPid, "bundle": r.Bundle, "sandboxId": r.SandboxID, "rootfs": r.Rootfs})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListContainers lists containers matching every filter given.
func (s *Server) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range s.lc.Containers().List() {
		r := c.Get()
		if r.Infra {
			continue
		}
		if f != nil {
			if f.GetId() != "" && !strings.HasPrefix(r.ID, f.GetId()) {
				continue
			}
			if f.GetState() != nil && f.GetState().GetState() != r.State {
				continue
			}
			if f.GetPodSandboxId() != "" && !strings.HasPrefix(r.SandboxID, f.GetPodSandboxId()) {
				continue
			}
			if !labelsMatch(r.Config.GetLabels(), f.GetLabelSelector()) {
				continue
			}
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: r.ID, PodSandboxId: r.SandboxID, Metadata: r.Config.GetMetadata(),
			Image: reportedImage(r.Config.GetImage()), ImageRef: r.ImageID, ImageId: r.ImageID, State: r.State, CreatedAt: r.CreatedAt,
			Labels: r.Config.GetLabels(), Annotations: r.Config.GetAnnotations(),
		})
	}
	return resp, nil
}
