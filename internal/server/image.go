package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

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
			return nil, invalid("auth.auth", "not base64: %v", err)
		}
		u, p, ok := strings.Cut(string(dec), ":")
		if !ok {
			return nil, invalid("auth.auth", "not user:password")
		}
		out.Username, out.Password = u, p
	}
	return out, nil
}

// PullImage pulls an image by tag, digest or short name.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "is empty")
	}
	auth, err := authFrom(req.GetAuth())
	if err != nil {
		return nil, err
	}
	ii, err := s.images.Pull(ctx, ref, auth)
	if err != nil {
		return nil, toStatus(err, "image.image %q", ref)
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
		return nil, toStatus(err, "list images")
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
		return nil, invalid("image.image", "is empty")
	}
	ii, err := s.images.Resolve(ref)
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return &runtimeapi.ImageStatusResponse{}, nil
		}
		return nil, toStatus(err, "image.image %q", ref)
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(ii)}
	if req.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"imageSpec": map[string]any{"config": ii.Config}})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// RemoveImage removes an image with all its tags; absent is success.
func (s *Server) RemoveImage(_ context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalid("image.image", "is empty")
	}
	if err := s.images.Remove(ref); err != nil {
		return nil, toStatus(err, "remove image %q", ref)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the usage of the image store and of the writable layers.
func (s *Server) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	root := s.images.GraphRoot()
	bytes, inodes, err := image.FsUsage(root)
	if err != nil {
		return nil, toStatus(err, "image filesystem usage")
	}
	now := time.Now().UnixNano()
	usage := &runtimeapi.FilesystemUsage{
		Timestamp: now, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: root},
		UsedBytes: &runtimeapi.UInt64Value{Value: bytes}, InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{usage}, ContainerFilesystems: []*runtimeapi.FilesystemUsage{usage}}, nil
}
