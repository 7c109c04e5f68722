package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cradle-runtime/cradle/internal/version"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version reports the CRI and runtime versions.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           "0.1.0",
		RuntimeName:       "cradle",
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}

// Status reports RuntimeReady and NetworkReady, each with a reason.
func (s *Server) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	rtReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if rt, _, err := s.lc.Runtime(""); err != nil {
		rtReady.Status, rtReady.Reason, rtReady.Message = false, "RuntimeNotConfigured", err.Error()
	} else if err := rt.Check(); err != nil {
		rtReady.Status, rtReady.Reason, rtReady.Message = false, "RuntimeBinaryMissing", err.Error()
	}
	netReady := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.net.Ready(); err != nil {
		netReady.Status, netReady.Reason, netReady.Message = false, "NetworkPluginNotReady", "Network plugin returns error: "+err.Error()
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{rtReady, netReady}}}
	cfg := s.lc.Config()
	for _, name := range cfg.HandlerNames() {
		resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: name, Features: s.handlerFeatures(name)})
	}
	// The default handler is also advertised under the empty name.
	resp.RuntimeHandlers = append(resp.RuntimeHandlers, &runtimeapi.RuntimeHandler{Name: "", Features: s.handlerFeatures(cfg.Runtime.DefaultHandler)})
	resp.Features = &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true}
	if req.GetVerbose() {
		info, err := s.verboseInfo()
		if err != nil {
			return nil, status.Errorf(codes.Internal, "verbose status: %v", err)
		}
		resp.Info = info
	}
	return resp, nil
}

// handlerFeatures advertises only what the handler's runtime binary can do:
// critest and the kubelet then use it.
func (s *Server) handlerFeatures(name string) *runtimeapi.RuntimeHandlerFeatures {
	rt, _, err := s.lc.Runtime(name)
	if err != nil {
		return &runtimeapi.RuntimeHandlerFeatures{}
	}
	f := rt.Features()
	// Pod user namespaces are pinned by cradle itself; idmapped mounts in
	// the runtime are what lets volumes keep their owners inside them.
	return &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: f.RecursiveReadOnly, UserNamespaces: f.IDMappedMounts}
}
