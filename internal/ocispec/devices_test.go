package ocispec

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func linuxDevice(t *testing.T, host, ctr, typ string, major, minor int64) specs.LinuxDevice {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(host, &st); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: ctr, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
}

func devices(ds ...*runtimeapi.Device) func(*ContainerInput) {
	return func(in *ContainerInput) { in.Config.Devices = ds }
}

func TestDevices(t *testing.T) {
	// A directory of devices: zero under sub/, and a plain file.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "sub", "zero")
	canMknod := unix.Mknod(zero, unix.S_IFCHR|0o640, int(unix.Mkdev(1, 5))) == nil
	if err := os.WriteFile(filepath.Join(dir, "README"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	null := linuxDevice(t, "/dev/null", "/dev/mynull", "c", 1, 3)
	cases := []specCase{
		{
			name: "a device with its permissions",
			in:   devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"}),
			want: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{null}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"})
			},
		},
		{
			name: "no permissions means rwm",
			in:   devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull"}),
			want: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{null}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"})
			},
		},
		{
			name: "privileged: every host device, all allowed, the config's too",
			host: func(h *testHost) {
				m := os.FileMode(0o660)
				var z uint32
				h.devices = []specs.LinuxDevice{
					{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &m, UID: &z, GID: &z},
					{Path: "/dev/mynull", Type: "c", Major: 9, Minor: 9, FileMode: &m, UID: &z, GID: &z},
				}
			},
			in: func(in *ContainerInput) {
				in.PodPrivileged = true
				secCtx(in).Privileged = true
				devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "r"})(in)
			},
			want: func(s *specs.Spec) {
				privileged(s)
				m := os.FileMode(0o660)
				var z uint32
				s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &m, UID: &z, GID: &z}, null}
			},
		},
		{
			name: "privileged without host devices: only the config's",
			host: func(h *testHost) {
				m := os.FileMode(0o660)
				var z uint32
				h.devices = []specs.LinuxDevice{{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &m, UID: &z, GID: &z}}
			},
			in: func(in *ContainerInput) {
				in.PodPrivileged, in.PrivilegedWithoutHostDevices = true, true
				secCtx(in).Privileged = true
				devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "r"})(in)
			},
			want: func(s *specs.Spec) {
				devs := s.Linux.Resources.Devices
				privileged(s)
				s.Linux.Resources.Devices = append(devs, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"})
				s.Linux.Devices = []specs.LinuxDevice{null}
			},
		},
	}
	owned := func(d specs.LinuxDevice, uid, gid uint32) specs.LinuxDevice {
		d.UID, d.GID = &uid, &gid
		return d
	}
	nullRule := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}
	nonRoot := func(own bool) func(*ContainerInput) {
		return func(in *ContainerInput) {
			in.Defaults.DeviceOwnershipFromSecurityContext = own
			secCtx(in).RunAsUser = &runtimeapi.Int64Value{Value: 5000}
			secCtx(in).RunAsGroup = &runtimeapi.Int64Value{Value: 6000}
			devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"})(in)
		}
	}
	cases = append(cases,
		specCase{
			name: "device ownership from the security context: a non-root container's uid and gid",
			in:   nonRoot(true),
			want: func(s *specs.Spec) {
				withUser(5000, 6000, "/", 6000)(s)
				s.Linux.Devices = []specs.LinuxDevice{owned(null, 5000, 6000)}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, nullRule)
			},
		},
		specCase{
			name: "device ownership off: the host's owner",
			in:   nonRoot(false),
			want: func(s *specs.Spec) {
				withUser(5000, 6000, "/", 6000)(s)
				s.Linux.Devices = []specs.LinuxDevice{null}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, nullRule)
			},
		},
		specCase{
			name: "device ownership for root: the host's owner",
			in: func(in *ContainerInput) {
				in.Defaults.DeviceOwnershipFromSecurityContext = true
				secCtx(in).RunAsGroup = &runtimeapi.Int64Value{Value: 6000}
				devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/mynull", Permissions: "rw"})(in)
			},
			want: func(s *specs.Spec) {
				withUser(0, 6000, "/root", 6000, 10)(s)
				s.Linux.Devices = []specs.LinuxDevice{null}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, nullRule)
			},
		},
	)
	if canMknod {
		cases = append(cases, specCase{
			name: "a directory of devices",
			in:   devices(&runtimeapi.Device{HostPath: dir, ContainerPath: "/dev/dir/", Permissions: "mr"}),
			want: func(s *specs.Spec) {
				s.Linux.Devices = []specs.LinuxDevice{linuxDevice(t, zero, "/dev/dir/sub/zero", "c", 1, 5)}
				s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
					specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "mr"})
			},
		})
	} else {
		t.Log("cannot mknod here: the directory case is skipped")
	}
	runSpecCases(t, cases)
	runErrCases(t, []errCase{
		{
			name:  "missing device",
			in:    devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/a"}, &runtimeapi.Device{HostPath: "/dev/nonexistent-cradle", ContainerPath: "/dev/b"}),
			field: "devices[1].host_path", msg: "no such file or directory",
		},
		{
			name:  "not a device",
			in:    devices(&runtimeapi.Device{HostPath: "/etc/hostname", ContainerPath: "/dev/a"}),
			field: "devices[0].host_path", msg: "not a device",
		},
		{
			name:  "a directory without devices",
			in:    devices(&runtimeapi.Device{HostPath: t.TempDir(), ContainerPath: "/dev/a"}),
			field: "devices[0].host_path", msg: "holds no device",
		},
		{
			name:  "relative container path",
			in:    devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "dev/a"}),
			field: "devices[0].container_path", msg: "not absolute",
		},
		{
			name:  "empty container path",
			in:    devices(&runtimeapi.Device{HostPath: "/dev/null"}),
			field: "devices[0].container_path", msg: "is empty",
		},
		{
			name:  "empty host path",
			in:    devices(&runtimeapi.Device{ContainerPath: "/dev/a"}),
			field: "devices[0].host_path", msg: "is empty",
		},
		{
			name:  "bad permissions",
			in:    devices(&runtimeapi.Device{HostPath: "/dev/null", ContainerPath: "/dev/a", Permissions: "rwx"}),
			field: "devices[0].permissions", msg: `"rwx"`,
		},
	})
}

func TestHostDevices(t *testing.T) {
	devs, err := hostDevices()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range devs {
		seen[d.Path] = true
		if filepath.Dir(d.Path) == "/dev/pts" || d.Path == "/dev/console" {
			t.Errorf("host devices include %s", d.Path)
		}
	}
	if !seen["/dev/null"] {
		t.Errorf("host devices lack /dev/null: %v", devs)
	}
}
