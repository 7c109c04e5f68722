package server

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func sandboxState(r sandbox.Record) runtimeapi.PodSandboxState {
	if r.State == sandbox.Ready {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// PodSandboxStatus reports the pod's state and IPs.
func (s *Server) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, crierr.Invalid("pod_sandbox_id", "is empty")
	}
	sb, err := s.lc.Sandboxes().Get(req.GetPodSandboxId())
	if err != nil {
		return nil, crierr.ToStatus(err, "pod sandbox")
	}
	r := sb.Get()
	resp := &runtimeapi.PodSandboxStatusResponse{Status: podSandboxStatus(r)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{
			"netns": r.NetNS, "ipcns": r.IPCNS, "utsns": r.UTSNS, "state": r.State,
			"networkStopped": r.NetworkStopped, "infraId": r.InfraID, "network": r.Network,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	resp.ContainersStatuses = s.containerStatusesOf(r.ID)
	return resp, nil
}

func (s *Server) containerStatusesOf(sandboxID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range s.lc.ContainersOf(sandboxID, false) {
		out = append(out, containerStatus(c.Get()))
	}
	return out
}

// podSandboxStatus is the CRI status of the sandbox record r.
func podSandboxStatus(r sandbox.Record) *runtimeapi.PodSandboxStatus {
	cfg := r.Config
	st := &runtimeapi.PodSandboxStatus{
		Id:             r.ID,
		Metadata:       cfg.GetMetadata(),
		State:          sandboxState(r),
		CreatedAt:      r.CreatedAt,
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: r.Handler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
	}
	if r.Network != nil && len(r.Network.IPs) > 0 && !sandbox.HostNetwork(cfg) {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: r.Network.IPs[0]}
		for _, ip := range r.Network.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	} else {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{}
	}
	return st
}

// ListPodSandbox lists sandboxes matching the filter.
func (s *Server) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range s.lc.Sandboxes().List() {
		r := sb.Get()
		if r.State == sandbox.Creating {
			continue // not visible until RunPodSandbox returned it
		}
		if f != nil {
			if f.GetId() != "" && !strings.HasPrefix(r.ID, f.GetId()) {
				continue
			}
			if f.GetState() != nil && f.GetState().GetState() != sandboxState(r) {
				continue
			}
			if !labelsMatch(r.Config.GetLabels(), f.GetLabelSelector()) {
				continue
			}
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{
			Id: r.ID, Metadata: r.Config.GetMetadata(), State: sandboxState(r), CreatedAt: r.CreatedAt,
			Labels: r.Config.GetLabels(), Annotations: r.Config.GetAnnotations(), RuntimeHandler: r.Handler,
		})
	}
	return resp, nil
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
