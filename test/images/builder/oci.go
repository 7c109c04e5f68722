package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

const (
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
)

// execConfig is the "config" object of an OCI image config; field names
// follow the image-spec (Docker's spelling).
type execConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created    string `json:"created"`
	CreatedBy  string `json:"created_by"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

type imageConfig struct {
	Created      string     `json:"created"`
	Architecture string     `json:"architecture"`
	OS           string     `json:"os"`
	Config       execConfig `json:"config"`
	RootFS       rootFS     `json:"rootfs"`
	History      []history  `json:"history"`
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []descriptor `json:"manifests"`
}

// image is one image to build: its layers (bottom first), run config and the
// registry references (PATH:TAG) it is pushed to.
type image struct {
	ref    string // name inside the OCI layout
	layers []*layer
	config execConfig
	push   []string
}

// ociLayout writes blobs into an OCI image layout directory.
type ociLayout struct {
	dir  string
	used map[string]bool
	refs []descriptor
}

func newLayout(dir string) (*ociLayout, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return nil, err
	}
	return &ociLayout{dir: dir, used: map[string]bool{}}, nil
}

// blob stores content under its digest; an existing blob is by definition
// the same bytes, so it is kept (reruns rewrite nothing).
func (o *ociLayout) blob(digest string, b []byte) error {
	o.used[digest] = true
	p := filepath.Join(o.dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
	if fi, err := os.Stat(p); err == nil && fi.Size() == int64(len(b)) {
		return nil
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// add builds img and records it in the index; it returns the manifest digest.
func (o *ociLayout) add(img *image, created time.Time) (string, error) {
	ts := created.UTC().Format(time.RFC3339)
	cfg := imageConfig{
		Created:      ts,
		Architecture: "amd64",
		OS:           "linux",
		Config:       img.config,
		RootFS:       rootFS{Type: "layers"},
	}
	m := manifest{SchemaVersion: 2, MediaType: mediaManifest, Layers: []descriptor{}}
	for _, l := range img.layers {
		if err := l.build(created); err != nil {
			return "", fmt.Errorf("%s: layer %q: %w", img.ref, l.comment, err)
		}
		if err := o.blob(l.digest, l.blob); err != nil {
			return "", err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		cfg.History = append(cfg.History, history{Created: ts, CreatedBy: "cradle test/images/builder", Comment: l.comment})
		m.Layers = append(m.Layers, descriptor{MediaType: mediaLayer, Digest: l.digest, Size: int64(len(l.blob))})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	m.Config = descriptor{MediaType: mediaConfig, Digest: sha256hex(cb), Size: int64(len(cb))}
	if err := o.blob(m.Config.Digest, cb); err != nil {
		return "", err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	md := sha256hex(mb)
	if err := o.blob(md, mb); err != nil {
		return "", err
	}
	o.refs = append(o.refs, descriptor{
		MediaType:   mediaManifest,
		Digest:      md,
		Size:        int64(len(mb)),
		Annotations: map[string]string{"org.opencontainers.image.ref.name": img.ref},
	})
	return md, nil
}

// finish writes index.json and drops blobs that no image uses any more.
func (o *ociLayout) finish() error {
	sort.Slice(o.refs, func(i, j int) bool {
		return o.refs[i].Annotations["org.opencontainers.image.ref.name"] < o.refs[j].Annotations["org.opencontainers.image.ref.name"]
	})
	ib, err := json.Marshal(index{SchemaVersion: 2, MediaType: mediaIndex, Manifests: o.refs})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.dir, "index.json"), ib, 0o644); err != nil {
		return err
	}
	blobs, err := os.ReadDir(filepath.Join(o.dir, "blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if !o.used["sha256:"+b.Name()] {
			if err := os.Remove(filepath.Join(o.dir, "blobs", "sha256", b.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
