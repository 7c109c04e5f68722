package server

import (
	"context"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// errCheckpoint says why there is no checkpoint: CRI-O and containerd
// checkpoint through CRIU, and Debian 12's CRIU 3.17.1 fails `criu check`
// on kernel 6.18 in its vDSO detection ("vdso: Failed to fill self vdso
// symtable", or "Unexpected rt vDSO area bounds"), so a checkpoint could
// neither be taken nor restored, nor tested.
const errCheckpoint = "CheckpointContainer is not implemented: checkpointing needs CRIU, and CRIU 3.17.1 fails `criu check` on kernel 6.18 (vDSO detection), so it can neither be done nor tested"

// CheckpointContainer is Unimplemented (errCheckpoint), for a known
// container as for an unknown one: the kubelet reads Unimplemented as
// "the runtime has no checkpoint support" and says so to the user.
func (s *Server) CheckpointContainer(_ context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	if req.GetContainerId() == "" {
		return nil, crierr.Invalid("container_id", "is empty")
	}
	return nil, status.Error(codes.Unimplemented, errCheckpoint)
}
