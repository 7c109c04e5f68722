package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/storage"
)

// layerTar is a tiny root file system: /etc/passwd, a symlink that points
// out of the image, and /bin/tool.
func layerTar(t *testing.T, marker string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, "root:x:0:0::/:/bin/sh\n")
	add(&tar.Header{Name: "escape", Typeflag: tar.TypeSymlink, Linkname: "/"}, "")
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o755}, marker)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

// newTestService opens a store in a temp dir with the driver ("": overlay,
// or vfs where the temp dir cannot hold overlay).
func newTestService(t *testing.T, root, driver string) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the image store needs root")
	}
	s, err := New(Options{Root: filepath.Join(root, "graph"), RunRoot: filepath.Join(root, "run"), Driver: driver,
		RegistriesConf: filepath.Join(root, "registries.conf")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func putImage(t *testing.T, s *Service, name, marker string) *storage.Image {
	t.Helper()
	layer, _, err := s.store.PutLayer("", "", nil, "", false, nil, layerTar(t, marker))
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.store.CreateImage("", []string{name}, layer.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestMountVolume(t *testing.T) {
	for _, driver := range []string{"", "vfs"} {
		t.Run("driver="+driver, func(t *testing.T) { testMountVolume(t, driver) })
	}
}

func testMountVolume(t *testing.T, driver string) {
	s := newTestService(t, t.TempDir(), driver)
	defer func() {
		if _, err := s.store.Shutdown(true); err != nil {
			t.Error(err)
		}
	}()
	base := putImage(t, s, "test.local/base:1", "base")
	img := putImage(t, s, "test.local/vol:1", "tool-1")
	for _, c := range []string{"c1", "c2"} {
		if _, err := s.CreateRootfs(c, c, base.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.MountVolume("no-rootfs", "test.local/vol:1", ""); err == nil {
		t.Fatal("a volume for a container without a root filesystem")
	}

	v, err := s.MountVolume("c1", "test.local/vol:1", "")
	if err != nil {
		t.Fatal(err)
	}
	if v.ImageID != "sha256:"+img.ID || v.StorageID != img.ID || v.Path != v.Root {
		t.Fatalf("volume %+v for image %s", v, img.ID)
	}
	if b, err := os.ReadFile(filepath.Join(v.Path, "bin", "tool")); err != nil || string(b) != "tool-1" {
		t.Fatalf("image content at the mount: %q %v", b, err)
	}
	if s.Driver() == "overlay" {
		err := os.WriteFile(filepath.Join(v.Path, "new"), nil, 0o644)
		if err == nil || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("writing into the image volume: %v, want a read-only file system", err)
		}
	}
	for _, tc := range []struct{ sub, want string }{
		{"etc", "etc"},
		{"bin/../etc", "etc"},
		{"escape/etc", "etc"}, // the symlink to / resolves inside the image
	} {
		sv, err := s.MountVolume("c2", img.ID, tc.sub)
		if err != nil {
			t.Fatalf("sub path %q: %v", tc.sub, err)
		}
		if sv.Path != filepath.Join(sv.Root, tc.want) {
			t.Errorf("sub path %q mounted %s, want %s inside %s", tc.sub, sv.Path, tc.want, sv.Root)
		}
	}
	for _, sub := range []string{"missing", "../etc", "/etc", "etc/../../x"} {
		if _, err := s.MountVolume("c2", img.ID, sub); !errors.Is(err, ErrInvalidSubPath) {
			t.Errorf("sub path %q: %v, want ErrInvalidSubPath", sub, err)
		}
	}
	if _, err := s.MountVolume("c2", "test.local/absent:1", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("volume of an absent image: %v, want ErrNotFound", err)
	}
	mounted := func() int {
		n, err := s.store.Mounted(img.TopLayer)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	// c2 releases: c1 still holds the mount, and the image.
	if err := s.UnmountVolumes("c2"); err != nil {
		t.Fatal(err)
	}
	if mounted() == 0 {
		t.Fatal("c2's release unmounted c1's volume")
	}
	if err := s.Remove("test.local/vol:1"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "image volume by container c1") {
		t.Fatalf("removing an image mounted by c1: %v, want ErrInUse naming c1", err)
	}
	// Removing c1's root filesystem releases its volumes too; twice is fine.
	for range 2 {
		if err := s.RemoveRootfs("c1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := mounted(); n != 0 {
		t.Fatalf("mount count %d after the last user left", n)
	}
	if err := s.Remove("test.local/vol:1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs("c2"); err != nil {
		t.Fatal(err)
	}
}

func TestOrphanLayersRemovedAtStart(t *testing.T) {
	root := t.TempDir()
	s := newTestService(t, root, "")
	img := putImage(t, s, "test.local/kept:1", "kept")
	orphan, _, err := s.store.PutLayer("", "", nil, "", false, nil, layerTar(t, "orphan"))
	if err != nil {
		t.Fatal(err)
	}
	// A container's writable layer has no image of its own to keep it.
	if _, err := s.store.CreateContainer("ctr", nil, img.ID, "", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Shutdown(true); err != nil {
		t.Fatal(err)
	}

	s = newTestService(t, root, "") // as after a crash in the middle of a pull
	defer func() { _, _ = s.store.Shutdown(true) }()
	if _, err := s.store.Layer(orphan.ID); !errors.Is(err, storage.ErrLayerUnknown) {
		t.Fatalf("orphaned layer still there: %v", err)
	}
	if _, err := s.store.Layer(img.TopLayer); err != nil {
		t.Fatalf("the image's layer was removed: %v", err)
	}
	c, err := s.store.Container("ctr")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Layer(c.LayerID); err != nil {
		t.Fatalf("the container's layer was removed: %v", err)
	}
	if err := s.Remove(img.ID); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "ctr") {
		t.Fatalf("removing an image a container uses: %v", err)
	}
}

func TestReconcileVolumesAfterCrash(t *testing.T) {
	s := newTestService(t, t.TempDir(), "")
	defer func() { _, _ = s.store.Shutdown(true) }()
	base := putImage(t, s, "test.local/base:1", "base")
	img := putImage(t, s, "test.local/vol:1", "vol")
	if _, err := s.CreateRootfs("c1", "c1", base.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MountVolume("c1", img.ID, ""); err != nil {
		t.Fatal(err)
	}
	// The container vanished behind the service's back (a crash between
	// the daemon's steps): its record and the mount stay.
	if _, err := s.store.Unmount("c1", true); err != nil {
		t.Fatal(err)
	}
	if err := s.store.DeleteContainer("c1"); err != nil {
		t.Fatal(err)
	}
	s.reconcileVolumes()
	if n, err := s.store.Mounted(img.TopLayer); err != nil || n != 0 {
		t.Fatalf("image still mounted (%d, %v) with no container left", n, err)
	}
	if uses, err := s.volumeUses("c1"); err != nil || len(uses) != 0 {
		t.Fatalf("record of the vanished container kept: %v %v", uses, err)
	}
	if err := s.Remove(img.ID); err != nil {
		t.Fatalf("removing the released image: %v", err)
	}
}
