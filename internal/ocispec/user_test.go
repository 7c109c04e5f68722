package ocispec

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func withUser(uid, gid uint32, home string, groups ...uint32) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
		s.Process.Env[len(s.Process.Env)-1] = "HOME=" + home
	}
}

func TestUser(t *testing.T) {
	image := func(u string) func(*ContainerInput) {
		return func(in *ContainerInput) { in.Image.User = u }
	}
	runSpecCases(t, []specCase{
		{name: "image USER uid", in: image("1000"), want: withUser(1000, 1000, "/home/alice", 1000, 44, 50)},
		{name: "image USER name", in: image("bob"), want: withUser(1001, 1001, "/home/bob", 1001, 50)},
		{name: "image USER uid:gid", in: image("1000:2000"), want: withUser(1000, 2000, "/home/alice", 2000, 44, 50)},
		{name: "image USER name:group", in: image("alice:staff"), want: withUser(1000, 50, "/home/alice", 50, 44)},
		{name: "image USER name:gid", in: image("bob:7"), want: withUser(1001, 7, "/home/bob", 7, 50)},
		{name: "image USER uid:group", in: image("1001:video"), want: withUser(1001, 44, "/home/bob", 44, 50)},
		{name: "image USER uid not in passwd", in: image("4242"), want: withUser(4242, 0, "/", 0)},
		{name: "passwd entry with no home", in: image("nohome"), want: withUser(1002, 1002, "/", 1002)},
		{
			name: "run_as_user wins over the image's USER",
			in: func(in *ContainerInput) {
				in.Image.User = "bob:staff"
				secCtx(in).RunAsUser = &runtimeapi.Int64Value{Value: 1000}
			},
			want: withUser(1000, 1000, "/home/alice", 1000, 44, 50),
		},
		{
			name: "run_as_user not in passwd gets gid 0",
			in:   func(in *ContainerInput) { secCtx(in).RunAsUser = &runtimeapi.Int64Value{Value: 5000} },
			want: withUser(5000, 0, "/", 0),
		},
		{
			name: "run_as_username",
			in:   func(in *ContainerInput) { secCtx(in).RunAsUsername = "alice" },
			want: withUser(1000, 1000, "/home/alice", 1000, 44, 50),
		},
		{
			name: "run_as_group overrides the primary group, memberships kept",
			in: func(in *ContainerInput) {
				secCtx(in).RunAsUser = &runtimeapi.Int64Value{Value: 1000}
				secCtx(in).RunAsGroup = &runtimeapi.Int64Value{Value: 3000}
			},
			want: withUser(1000, 3000, "/home/alice", 3000, 44, 50),
		},
		{
			name: "run_as_group with the image's USER",
			in: func(in *ContainerInput) {
				in.Image.User = "alice:staff"
				secCtx(in).RunAsGroup = &runtimeapi.Int64Value{Value: 3000}
			},
			want: withUser(1000, 3000, "/home/alice", 3000, 44, 50),
		},
		{
			name: "merge: primary, /etc/group memberships, then the config's",
			in: func(in *ContainerInput) {
				sc := secCtx(in)
				sc.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
				sc.RunAsGroup = &runtimeapi.Int64Value{Value: 3000}
				sc.SupplementalGroups = []int64{4000, 50}
				sc.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Merge
			},
			want: withUser(1000, 3000, "/home/alice", 3000, 44, 50, 4000),
		},
		{
			name: "strict: primary and the config's only",
			in: func(in *ContainerInput) {
				sc := secCtx(in)
				sc.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
				sc.RunAsGroup = &runtimeapi.Int64Value{Value: 3000}
				sc.SupplementalGroups = []int64{4000}
				sc.SupplementalGroupsPolicy = runtimeapi.SupplementalGroupsPolicy_Strict
			},
			want: withUser(1000, 3000, "/home/alice", 3000, 4000),
		},
		{
			name: "HOME from the config is kept",
			in: func(in *ContainerInput) {
				in.Image.User = "alice"
				in.Config.Envs = []*runtimeapi.KeyValue{{Key: "HOME", Value: []byte("/data")}}
			},
			want: func(s *specs.Spec) {
				s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 44, 50}}
				s.Process.Env[len(s.Process.Env)-1] = "HOME=/data"
			},
		},
		{
			name: "no passwd or group in the image: numeric users work",
			in: func(in *ContainerInput) {
				in.Rootfs = t.TempDir()
				in.Image.User = "1234:5678"
				secCtx(in).SupplementalGroups = []int64{9}
			},
			want: withUser(1234, 5678, "/", 5678, 9),
		},
	})
	escaping := func(in *ContainerInput) {
		// An absolute symlink is resolved in the rootfs, never on the host.
		etc := filepath.Join(in.Rootfs, "etc")
		os.Remove(filepath.Join(etc, "passwd"))
		if err := os.Symlink("/etc/passwd", filepath.Join(etc, "passwd")); err != nil {
			t.Fatal(err)
		}
		in.Image.User = "root"
	}
	runErrCases(t, []errCase{
		{
			name:  "unknown run_as_username",
			in:    func(in *ContainerInput) { secCtx(in).RunAsUsername = "mallory" },
			field: "linux.security_context.run_as_username", msg: `"mallory" is not in the image's /etc/passwd`,
		},
		{name: "unknown image user", in: image("mallory"), field: "image.user", msg: "mallory"},
		{name: "unknown image group", in: image("alice:nogroup"), field: "image.user", msg: "nogroup"},
		{name: "image user out of range", in: image("-5"), field: "image.user", msg: "not a valid id"},
		{name: "passwd symlinked to the host's", in: escaping, field: "image.user", msg: "root"},
		{
			name:  "negative run_as_user",
			in:    func(in *ContainerInput) { secCtx(in).RunAsUser = &runtimeapi.Int64Value{Value: -1} },
			field: "linux.security_context.run_as_user", msg: "not a valid id",
		},
		{
			name:  "negative run_as_group",
			in:    func(in *ContainerInput) { secCtx(in).RunAsGroup = &runtimeapi.Int64Value{Value: -1} },
			field: "linux.security_context.run_as_group", msg: "not a valid id",
		},
		{
			name:  "bad supplemental group",
			in:    func(in *ContainerInput) { secCtx(in).SupplementalGroups = []int64{1, 1 << 40} },
			field: "linux.security_context.supplemental_groups[1]", msg: "not a valid id",
		},
	})
}
