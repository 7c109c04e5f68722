package oci

import (
	"path/filepath"
	"strconv"

	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// setUser resolves the process user against the image's passwd and group
// files: the config's run_as_* first, then the image's USER.
func setUser(g *generate.Generator, in *ContainerInput) error {
	sc := in.Config.GetLinux().GetSecurityContext()
	spec := in.Image.User
	switch {
	case sc.GetRunAsUser() != nil:
		spec = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		spec = sc.GetRunAsUsername()
	}
	if sc.GetRunAsGroup() != nil {
		uidPart := spec
		if u, _, ok := cutColon(spec); ok {
			uidPart = u
		}
		if uidPart == "" {
			uidPart = "0"
		}
		spec = uidPart + ":" + strconv.FormatInt(sc.GetRunAsGroup().GetValue(), 10)
	}
	passwd := filepath.Join(in.Rootfs, "etc/passwd")
	group := filepath.Join(in.Rootfs, "etc/group")
	eu, err := user.GetExecUserPath(spec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		field := "image.user"
		if sc.GetRunAsUsername() != "" {
			field = "linux.security_context.run_as_username"
		}
		return fieldErr(field, "cannot resolve user %q in the image: %v", spec, err)
	}
	g.SetProcessUID(uint32(eu.Uid))
	g.SetProcessGID(uint32(eu.Gid))
	g.ClearProcessAdditionalGids()
	seen := map[uint32]bool{}
	add := func(gid uint32) {
		if !seen[gid] {
			seen[gid] = true
			g.AddProcessAdditionalGid(gid)
		}
	}
	add(uint32(eu.Gid))
	if sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		for _, gid := range eu.Sgids {
			add(uint32(gid))
		}
	}
	for _, gid := range sc.GetSupplementalGroups() {
		add(uint32(gid))
	}
	hasHome := false
	for _, e := range g.Config.Process.Env {
		if len(e) >= 5 && e[:5] == "HOME=" {
			hasHome = true
		}
	}
	if !hasHome {
		g.AddProcessEnv("HOME", eu.Home)
	}
	return nil
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}
