package ocispec

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// hostDirs makes real host directories to mount: private, shared and
// slave ones (as the fake host's mount table says), and a file.
func hostDirs(t *testing.T) (private, shared, slave, file string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	private, shared, slave = filepath.Join(dir, "private"), filepath.Join(dir, "shared"), filepath.Join(dir, "slave")
	for _, d := range []string{private, shared, slave} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file = filepath.Join(dir, "termination-log")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return
}

func propagationHost(shared, slave string) func(*testHost) {
	return func(h *testHost) {
		h.mounts = []*mountinfo.Info{
			{Mountpoint: "/", Optional: ""},
			{Mountpoint: shared, Optional: "shared:7"},
			{Mountpoint: slave, Optional: "shared:2"},
			{Mountpoint: filepath.Dir(shared), Optional: "master:9"}, // the deeper mounts win
			{Mountpoint: slave, Optional: "master:3"},                // on top of the shared one
		}
	}
}

func mounts(ms ...*runtimeapi.Mount) func(*ContainerInput) {
	return func(in *ContainerInput) { in.Config.Mounts = ms }
}

// addMounts puts top-level mounts after the golden base mounts, before
// the pod's files, which are a level deeper.
func addMounts(ms ...specs.Mount) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Mounts = append(s.Mounts[:6:6], append(ms, s.Mounts[6:]...)...) }
}

func bindMount(dst, src string, opts ...string) specs.Mount {
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
}

func TestMounts(t *testing.T) {
	private, shared, slave, file := hostDirs(t)
	link := filepath.Join(filepath.Dir(private), "link")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	host := propagationHost(shared, slave)
	runSpecCases(t, []specCase{
		{
			name: "rw and ro binds; a symlinked host path is followed",
			host: host,
			in: mounts(
				&runtimeapi.Mount{ContainerPath: "/data", HostPath: private},
				&runtimeapi.Mount{ContainerPath: "/cfg/", HostPath: link, Readonly: true},
			),
			want: addMounts(
				bindMount("/data", private, "rbind", "rprivate", "rw"),
				bindMount("/cfg", private, "rbind", "rprivate", "ro"),
			),
		},
		{
			name: "an image volume is bound read-only from where the image service mounted it",
			in: func(in *ContainerInput) {
				mounts(&runtimeapi.Mount{ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "busybox"}})(in)
				in.ImageVolumes = map[int]string{0: private}
			},
			want: addMounts(bindMount("/img", private, "rbind", "rprivate", "ro", "nosuid", "nodev")),
		},
		{
			name: "propagation: rslave on a slave or shared mount, rshared on a shared one",
			host: host,
			in: mounts(
				&runtimeapi.Mount{ContainerPath: "/a", HostPath: slave, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
				&runtimeapi.Mount{ContainerPath: "/b", HostPath: shared, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL},
				&runtimeapi.Mount{ContainerPath: "/c", HostPath: shared, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
				&runtimeapi.Mount{ContainerPath: "/d", HostPath: private, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			),
			want: func(s *specs.Spec) {
				addMounts(
					bindMount("/a", slave, "rbind", "rslave", "rw"),
					bindMount("/b", shared, "rbind", "rshared", "rw"),
					bindMount("/c", shared, "rbind", "rslave", "rw"),
					bindMount("/d", private, "rbind", "rslave", "rw"),
				)(s)
				s.Linux.RootfsPropagation = "rshared"
			},
		},
		{
			name: "propagation: an rslave mount makes the root rslave",
			host: host,
			in: mounts(
				&runtimeapi.Mount{ContainerPath: "/a", HostPath: private},
				&runtimeapi.Mount{ContainerPath: "/b", HostPath: slave, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
			),
			want: func(s *specs.Spec) {
				addMounts(bindMount("/a", private, "rbind", "rprivate", "rw"), bindMount("/b", slave, "rbind", "rslave", "rw"))(s)
				s.Linux.RootfsPropagation = "rslave"
			},
		},
		{
			name: "recursive read-only",
			host: host,
			in:   mounts(&runtimeapi.Mount{ContainerPath: "/r", HostPath: private, Readonly: true, RecursiveReadOnly: true}),
			want: addMounts(bindMount("/r", private, "rbind", "rprivate", "ro", "rro")),
		},
		{
			name: "mount options and id mappings are passed on",
			host: host,
			in: mounts(&runtimeapi.Mount{ContainerPath: "/o", HostPath: private, MountOptions: []string{"noexec", "nosuid"},
				UidMappings: []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}},
				GidMappings: []*runtimeapi.IDMapping{{HostId: 200000, ContainerId: 0, Length: 65536}}}),
			want: func(s *specs.Spec) {
				m := bindMount("/o", private, "rbind", "rprivate", "rw", "noexec", "nosuid")
				m.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				m.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
				addMounts(m)(s)
			},
		},
		{
			name: "termination log under /dev; parents before children whatever the order",
			host: host,
			in: mounts(
				&runtimeapi.Mount{ContainerPath: "/dev/termination-log", HostPath: file},
				&runtimeapi.Mount{ContainerPath: "/var/lib/x", HostPath: private},
				&runtimeapi.Mount{ContainerPath: "/var", HostPath: shared},
			),
			want: func(s *specs.Spec) {
				// /var goes with the depth-1 mounts, before the depth-2 ones.
				pod := s.Mounts[6:]
				s.Mounts = append(s.Mounts[:6:6], bindMount("/var", shared, "rbind", "rprivate", "rw"),
					bindMount("/dev/termination-log", file, "rbind", "rprivate", "rw"))
				s.Mounts = append(s.Mounts, pod...)
				s.Mounts = append(s.Mounts, bindMount("/var/lib/x", private, "rbind", "rprivate", "rw"))
			},
		},
		{
			name: "a config mount replaces a pod file and a base mount",
			host: host,
			in: mounts(
				&runtimeapi.Mount{ContainerPath: "/etc/hosts", HostPath: file},
				&runtimeapi.Mount{ContainerPath: "/proc/x", HostPath: private},
				&runtimeapi.Mount{ContainerPath: "/dev/shm", HostPath: private},
			),
			want: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts[:6:6],
					bindMount("/etc/hosts", file, "rbind", "rprivate", "rw"),
					bindMount("/proc/x", private, "rbind", "rprivate", "rw"),
					bindMount("/dev/shm", private, "rbind", "rprivate", "rw"),
					bindMount("/etc/resolv.conf", "/pod/resolv.conf", "rbind", "rprivate", "rw"),
					bindMount("/etc/hostname", "/pod/hostname", "rbind", "rprivate", "rw"),
				)
			},
		},
		{
			name: "read-only rootfs makes the pod files read-only",
			in:   func(in *ContainerInput) { secCtx(in).ReadonlyRootfs = true },
			want: func(s *specs.Spec) {
				s.Root.Readonly = true
				for i := 6; i < 9; i++ {
					s.Mounts[i].Options = []string{"rbind", "rprivate", "ro"}
				}
			},
		},
		{
			name: "no pod files, no shm: the base /dev/shm stays",
			in: func(in *ContainerInput) {
				in.Sandbox.HostsFile, in.Sandbox.ResolvFile, in.Sandbox.HostnameFile, in.Sandbox.ShmPath = "", "", "", ""
			},
			want: func(s *specs.Spec) {
				shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}
				s.Mounts = append(s.Mounts[:3:3], append([]specs.Mount{shm}, s.Mounts[3:6]...)...)
			},
		},
		{
			name: "host IPC: the host's /dev/shm",
			in:   func(in *ContainerInput) { in.Sandbox.ShmPath, in.Sandbox.IPCNS = "/dev/shm", "" },
			want: func(s *specs.Spec) {
				s.Mounts[9].Source = "/dev/shm"
				s.Linux.Namespaces = append(s.Linux.Namespaces[:2:2], s.Linux.Namespaces[3:]...)
			},
		},
		{
			name: "image volumes get per-container directories, unless the config mounts them",
			host: host,
			in: func(in *ContainerInput) {
				in.VolumeDir = "/vols/c1"
				in.Image.Volumes = map[string]struct{}{"/var/lib/db": {}, "/data": {}, "cache/": {}}
				in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: "/data/", HostPath: private}}
			},
			want: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts[:6:6],
					bindMount("/data", private, "rbind", "rprivate", "rw"),
					bindMount("/cache", "/vols/c1/"+volName("/cache"), "rbind", "rprivate", "rw"))
				s.Mounts = append(s.Mounts, golden(&ContainerInput{}).Mounts[6:]...)
				s.Mounts = append(s.Mounts, bindMount("/var/lib/db", "/vols/c1/"+volName("/var/lib/db"), "rbind", "rprivate", "rw"))
			},
		},
		{
			name: "image volumes without a volume dir stay in the rootfs",
			in:   func(in *ContainerInput) { in.Image.Volumes = map[string]struct{}{"/data": {}} },
		},
		{
			name: "SELinux relabel is the preparation's; the spec is the same",
			host: func(h *testHost) { propagationHost(shared, slave)(h); h.selinux = true },
			in:   mounts(&runtimeapi.Mount{ContainerPath: "/z", HostPath: private, SelinuxRelabel: true}),
			want: func(s *specs.Spec) {
				addMounts(bindMount("/z", private, "rbind", "rprivate", "rw"))(s)
				s.Process.SelinuxLabel = "system_u:system_r:container_t:s0:c1,c2"
				s.Linux.MountLabel = "system_u:object_r:container_file_t:s0:c1,c2"
			},
		},
		{
			name: "SELinux relabel is ignored when SELinux is off, even of /etc",
			host: host,
			in:   mounts(&runtimeapi.Mount{ContainerPath: "/z", HostPath: "/etc", SelinuxRelabel: true}),
			want: addMounts(bindMount("/z", "/etc", "rbind", "rprivate", "rw")),
		},
	})
	runErrCases(t, []errCase{
		{name: "empty container path", in: mounts(&runtimeapi.Mount{HostPath: private}), field: "mounts[0].container_path", msg: "is empty"},
		{
			name:  "relative container path",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/ok", HostPath: private}, &runtimeapi.Mount{ContainerPath: "rel", HostPath: private}),
			field: "mounts[1].container_path", msg: `"rel" is not absolute`,
		},
		{name: "mount over /", in: mounts(&runtimeapi.Mount{ContainerPath: "//", HostPath: private}), field: "mounts[0].container_path", msg: "root"},
		{name: "empty host path", in: mounts(&runtimeapi.Mount{ContainerPath: "/x"}), field: "mounts[0].host_path", msg: "is empty"},
		{
			name:  "missing host path",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: "/nonexistent/cradle"}),
			field: "mounts[0].host_path", msg: "no such file or directory",
		},
		{
			name:  "image mount the image service did not mount",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", Image: &runtimeapi.ImageSpec{Image: "busybox"}}),
			field: "mounts[0].image", msg: "is not mounted",
		},
		{
			name: "bidirectional on a private mount", host: host,
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}),
			field: "mounts[0].propagation", msg: "needs " + private + " to be on a shared mount, but " + filepath.Dir(private) + " is slave",
		},
		{
			name: "bidirectional on a slave mount", host: host,
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: slave, Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}),
			field: "mounts[0].propagation", msg: "but " + slave + " is slave",
		},
		{
			name:  "host-to-container on a private mount",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}),
			field: "mounts[0].propagation", msg: "shared or slave mount, but / is private",
		},
		{
			name:  "unknown propagation",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, Propagation: 9}),
			field: "mounts[0].propagation", msg: "unknown",
		},
		{
			name:  "rro without readonly",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, RecursiveReadOnly: true}),
			field: "mounts[0].recursive_read_only", msg: "needs readonly",
		},
		{
			name: "rro with propagation", host: host,
			in: mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: slave, Readonly: true, RecursiveReadOnly: true,
				Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER}),
			field: "mounts[0].recursive_read_only", msg: "needs private propagation",
		},
		{
			name:  "bad mount option",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, MountOptions: []string{"ro,exec"}}),
			field: "mounts[0].mount_options[0]", msg: "invalid option",
		},
		{
			name:  "zero-length id mapping",
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: private, UidMappings: []*runtimeapi.IDMapping{{HostId: 1}}}),
			field: "mounts[0].uidMappings[0].length", msg: "is zero",
		},
		{
			name: "relabel of a system directory", host: func(h *testHost) { h.selinux = true },
			in:    mounts(&runtimeapi.Mount{ContainerPath: "/x", HostPath: "/usr", SelinuxRelabel: true}),
			field: "mounts[0].selinux_relabel", msg: "/usr",
		},
	})
}

// volName is the directory name a VOLUME gets: a hash of its path.
func volName(dst string) string {
	sum := sha256.Sum256([]byte(dst))
	return hex.EncodeToString(sum[:])[:16]
}
