package lifecycle

import (
	"errors"
	"strconv"

	"github.com/cradle-runtime/cradle/internal/crierr"
	"github.com/cradle-runtime/cradle/internal/image"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// mountImageVolumes mounts the image volumes (Mount.image, KEP-4639) of
// container id, whose root filesystem must exist already (CreateRootfs).
// It returns each one by its index in cfg.Mounts: bind-mount Path
// read-only at the mount's container_path. On error nothing of it stays
// mounted; once it succeeded, RemoveRootfs (or UnmountVolumes) releases
// the volumes, also after a restart.
func (m *Manager) mountImageVolumes(id string, cfg *runtimeapi.ContainerConfig) (map[int]*image.ImageVolume, error) {
	vols := map[int]*image.ImageVolume{}
	for i, mnt := range cfg.GetMounts() {
		ref := mnt.GetImage().GetImage()
		if ref == "" {
			continue
		}
		field := "config.mounts[" + strconv.Itoa(i) + "]"
		v, err := m.mountImageVolume(id, field, mnt)
		if err != nil {
			_ = m.images.UnmountVolumes(id)
			return nil, err
		}
		vols[i] = v
	}
	return vols, nil
}

func (m *Manager) mountImageVolume(id, field string, mnt *runtimeapi.Mount) (*image.ImageVolume, error) {
	if !mnt.GetReadonly() {
		return nil, crierr.Invalid(field+".readonly", "must be true: image volumes are read-only")
	}
	v, err := m.images.MountVolume(id, mnt.GetImage().GetImage(), mnt.GetImageSubPath())
	if errors.Is(err, image.ErrNotFound) {
		return nil, status.Errorf(codes.NotFound, "%s.image.image: image %q is not pulled", field, mnt.GetImage().GetImage())
	}
	if err != nil {
		return nil, crierr.ToStatus(err, "%s", field)
	}
	return v, nil
}
