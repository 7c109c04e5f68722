package ocispec

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type fileInfo struct {
	mode     os.FileMode
	uid, gid uint32
	content  string // a file's content or a symlink's target
}

// tree lists what is under dir.
func tree(t *testing.T, dir string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st := fi.Sys().(*syscall.Stat_t)
		f := fileInfo{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			f.content = string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			f.content, _ = os.Readlink(p)
		}
		out[rel] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPrepareHostVolumes(t *testing.T) {
	useHost(t, defaultHost())
	in := baseInput(t)
	in.VolumeDir = filepath.Join(t.TempDir(), "volumes")
	in.Image.Volumes = map[string]struct{}{"/var/lib/db": {}, "/empty": {}, "/escape": {}, "/file": {}, "/taken": {}}
	in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/taken", HostPath: t.TempDir()}}
	root := in.Rootfs
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(root, "var/lib/db")
	must(os.MkdirAll(filepath.Join(db, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(db, "data"), []byte("rows"), 0o640))
	must(os.WriteFile(filepath.Join(db, "sub/suid"), []byte("x"), 0o755))
	must(os.Symlink("/etc/passwd", filepath.Join(db, "link")))
	must(os.Chown(filepath.Join(db, "data"), 1000, 50))
	must(os.Chmod(filepath.Join(db, "sub/suid"), os.ModeSetuid|0o755))
	must(os.Lchown(filepath.Join(db, "link"), 1001, 1001))
	must(os.Chown(db, 999, 999))
	must(os.Chmod(db, os.ModeSticky|0o770))
	must(os.Symlink("/", filepath.Join(root, "escape")))
	must(os.WriteFile(filepath.Join(root, "file"), []byte("not a dir"), 0o644))
	must(os.WriteFile(filepath.Join(root, "taken"), nil, 0o644))

	s, err := ContainerSpec(in)
	must(err)
	must(PrepareHost(in, s))

	var names []string
	entries, err := os.ReadDir(in.VolumeDir)
	must(err)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{volName("/empty"), volName("/escape"), volName("/file"), volName("/var/lib/db")}
	sort.Strings(want)
	if !reflect.DeepEqual(names, want) {
		t.Errorf("volume dirs = %v, want %v", names, want)
	}
	got := tree(t, filepath.Join(in.VolumeDir, volName("/var/lib/db")))
	wantTree := map[string]fileInfo{
		".":        {mode: os.ModeDir | os.ModeSticky | 0o770, uid: 999, gid: 999},
		"data":     {mode: 0o640, uid: 1000, gid: 50, content: "rows"},
		"sub":      {mode: os.ModeDir | 0o755},
		"sub/suid": {mode: os.ModeSetuid | 0o755, content: "x"},
		"link":     {mode: os.ModeSymlink | 0o777, uid: 1001, gid: 1001, content: "/etc/passwd"},
	}
	if !reflect.DeepEqual(got, wantTree) {
		t.Errorf("copied volume:\n got %v\nwant %v", got, wantTree)
	}
	for _, v := range []string{"/empty", "/escape", "/file"} {
		got := tree(t, filepath.Join(in.VolumeDir, volName(v)))
		if want := map[string]fileInfo{".": {mode: os.ModeDir | 0o755}}; !reflect.DeepEqual(got, want) {
			t.Errorf("volume %s = %v, want an empty directory", v, got)
		}
	}

	// Idempotent: a second call keeps what is there.
	must(os.WriteFile(filepath.Join(in.VolumeDir, volName("/empty"), "written"), nil, 0o644))
	must(PrepareHost(in, s))
	if _, err := os.Stat(filepath.Join(in.VolumeDir, volName("/empty"), "written")); err != nil {
		t.Errorf("second PrepareHost replaced a volume: %v", err)
	}
}

func TestPrepareHostRelabel(t *testing.T) {
	useHost(t, testHost{selinux: true, swap: true})
	saved := relabel
	t.Cleanup(func() { relabel = saved })
	type call struct {
		path, label string
		shared      bool
	}
	var calls []call
	relabel = func(p, l string, shared bool) error {
		calls = append(calls, call{p, l, shared})
		return nil
	}
	in := baseInput(t)
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	in.Sandbox.ShmPath = "/dev/shm" // the host's: never relabeled
	in.Image.Volumes = map[string]struct{}{"/v": {}}
	in.Config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/a", HostPath: dir, SelinuxRelabel: true},
		{ContainerPath: "/b", HostPath: dir},
	}
	spec := &specs.Spec{Linux: &specs.Linux{MountLabel: "m:l"}, Process: &specs.Process{}}
	in.VolumeDir = filepath.Join(t.TempDir(), "vols")
	if err := PrepareHost(in, spec); err != nil {
		t.Fatal(err)
	}
	want := []call{
		{dir, "m:l", false},
		{"/pod/hosts", "m:l", true}, {"/pod/resolv.conf", "m:l", true}, {"/pod/hostname", "m:l", true},
		{filepath.Join(in.VolumeDir, volName("/v")), "m:l", false},
	}
	if !reflect.DeepEqual(calls, want) {
		t.Errorf("relabels:\n got %v\nwant %v", calls, want)
	}
	calls = nil
	spec.Linux.MountLabel = ""
	if err := PrepareHost(in, spec); err != nil || calls != nil {
		t.Errorf("without a mount label: %v, relabels %v", err, calls)
	}
}
