package image

import (
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/types"
)

// IDMap maps a range of container IDs to host IDs.
type IDMap struct {
	ContainerID, HostID, Size int
}

// CreateRootfsMapped is CreateRootfs for a container in a user namespace:
// the layer's files belong to the namespace's IDs (shifted at mount time
// where the driver can, chowned otherwise), so root in the pod owns them.
func (s *Service) CreateRootfsMapped(id, name, imageID string, uids, gids []IDMap) (string, error) {
	conv := func(in []IDMap) []idtools.IDMap {
		out := make([]idtools.IDMap, 0, len(in))
		for _, m := range in {
			out = append(out, idtools.IDMap{ContainerID: m.ContainerID, HostID: m.HostID, Size: m.Size})
		}
		return out
	}
	return s.createRootfs(id, name, imageID, &storage.ContainerOptions{
		IDMappingOptions: types.IDMappingOptions{UIDMap: conv(uids), GIDMap: conv(gids)},
	})
}
