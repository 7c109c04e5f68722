package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/cradle-runtime/cradle/internal/failpoint"

	"github.com/cradle-runtime/cradle/internal/crierr"

	"github.com/cradle-runtime/cradle/internal/image"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func criImage(ii *image.ImageInfo) *runtimeapi.Image {
	img := &runtimeapi.Image{
		Id: ii.ID, RepoTags: ii.RepoTags, RepoDigests: ii.RepoDigests, Size: ii.Size,
		Pinned: ii.Pinned, Spec: &runtimeapi.ImageSpec{Image: ii.ID},
	}
	user := ii.Config.User
	if u, _, ok := strings.Cut(user, ":"); ok {
		user = u
	}
	if user != "" {
		if uid, ok := parseUID(user); ok {
			img.Uid = &runtimeapi.Int64Value{Value: uid}
		} else {
			img.Username = user
		}
	}
	return img
}

func parseUID(s string) (int64, bool) {
	var v int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, s != ""
}

func authFrom(a *runtimeapi.AuthConfig) (*image.Auth, error) {
	if a == nil {
		return nil, nil
	}
	out := &image.Auth{Username: a.GetUsername(), Password: a.GetPassword(), IdentityToken: a.GetIdentityToken(), RegistryToken: a.GetRegistryToken()}
	if a.GetAuth() != "" {
		dec, err := base64.StdEncoding.DecodeString(a.GetAuth())
		if err != nil {
			return nil, crierr.Invalid("auth.auth", "not base64: %v", err)
		}
		u, p, ok := strings.Cut(string(dec), ":")
		if !ok {
			return nil, crierr.Invalid("auth.auth", "not user:password")
		}
		out.Username, out.Password = u, p
	}
	return out, nil
}

// PullImage pulls an image by tag, digest or short name.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, crierr.Invalid("image.image", "is empty")
	}
	auth, err := authFrom(req.GetAuth())
	if err != nil {
		return nil, err
	}
	var pc image.PullContext
	if md := req.GetSandboxConfig().GetMetadata(); md != nil {
		pc.Pod = md.GetNamespace() + "/" + md.GetName()
	}
	failpoint.Hit("pull:before")
	ii, err := s.images.PullFor(ctx, ref, auth, pc)
	failpoint.Hit("pull:after")
	if err != nil {
		return nil, crierr.ToStatus(err, "image.image %q", ref)
	}
	return &runtimeapi.PullImageResponse{ImageRef: ii.ID}, nil
}

// ListImages lists stored images, optionally filtered by one image.
func (s *Server) ListImages(_ context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	resp := &runtimeapi.ListImagesResponse{}
	if f := req.GetFilter().GetImage().GetImage(); f != "" {
		ii, err := s.images.Resolve(f)
		if err == nil {
			resp.Images = append(resp.Images, criImage(ii))
		}
		return resp, nil
	}
	all, err := s.images.List()
	if err != nil {
		return nil, crierr.ToStatus(err, "list images")
	}
	for _, ii := range all {
		resp.Images = append(resp.Images, criImage(ii))
	}
	return resp, nil
}

// ImageStatus returns the image, or an empty response when it is absent.
func (s *Server) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, crierr.Invalid("image.image", "is empty")
	}
	ii, err := s.images.Resolve(ref)
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return &runtimeapi.ImageStatusResponse{}, nil
		}
		return nil, crierr.ToStatus(err, "image.image %q", ref)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(ii)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{
			"imageSpec": ii.OCI, "storageID": ii.StorageID, "repoTags": ii.RepoTags,
			"repoDigests": ii.RepoDigests, "pinned": ii.Pinned, "labels": ii.Config.Labels,
		})
		if err != nil {
			return nil, crierr.ToStatus(err, "encode verbose info of %q", ref)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// RemoveImage removes an image with all its tags; absent is success.
func (s *Server) RemoveImage(_ context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, crierr.Invalid("image.image", "is empty")
	}
	if err := s.images.Remove(ref); err != nil {
		return nil, crierr.ToStatus(err, "remove image %q", ref)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the usage of the image layers and, apart, of the
// containers' writable layers; both live in the store's graph root.
func (s *Server) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	imgs, ctrs, err := s.images.FsInfo()
	if err != nil {
		return nil, crierr.ToStatus(err, "image filesystem usage")
	}
	now := time.Now().UnixNano()
	usage := func(u image.Usage) *runtimeapi.FilesystemUsage {
		return &runtimeapi.FilesystemUsage{
			Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: u.Mountpoint},
			UsedBytes: &runtimeapi.UInt64Value{Value: u.Bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: u.Inodes},
		}
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{usage(imgs)},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{usage(ctrs)},
	}, nil
}

// imageVolumeStatus is how ContainerStatus reports an image volume: the
// image as asked for, and image_ref, the ID of the image mounted.
func imageVolumeStatus(m *runtimeapi.Mount, imageRef string) *runtimeapi.Mount {
	return &runtimeapi.Mount{
		ContainerPath: m.GetContainerPath(), Readonly: true, ImageSubPath: m.GetImageSubPath(),
		Image: &runtimeapi.ImageSpec{
			Image: m.GetImage().GetImage(), UserSpecifiedImage: m.GetImage().GetUserSpecifiedImage(), ImageRef: imageRef,
		},
	}
}
