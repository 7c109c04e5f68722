package ocispec

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// userDB is the image's /etc/passwd and /etc/group; either may be missing.
type userDB struct {
	users  []user.User
	groups []user.Group
}

// readUserDB reads the image's files through an os.Root, so that a symlink
// in the image cannot make us read the host's.
func readUserDB(rootfs string) userDB {
	var db userDB
	if rootfs == "" {
		return db
	}
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return db
	}
	defer root.Close()
	if f, err := openImageFile(root, "etc/passwd"); err == nil {
		db.users, _ = user.ParsePasswd(io.LimitReader(f, maxUserDBSize))
		f.Close()
	}
	if f, err := openImageFile(root, "etc/group"); err == nil {
		db.groups, _ = user.ParseGroup(io.LimitReader(f, maxUserDBSize))
		f.Close()
	}
	return db
}

// maxUserDBSize bounds what is read of an image's passwd or group file.
const maxUserDBSize = 16 << 20

// openImageFile opens a regular file of the image: a FIFO or device there
// would block or never end the read, holding up the create.
func openImageFile(root *os.Root, name string) (*os.File, error) {
	return regularFile(root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0))
}

// regularFile passes on a file opened with O_NONBLOCK (so that opening a
// FIFO does not wait for a writer) only if it is a regular file.
func regularFile(f *os.File, err error) (*os.File, error) {
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", f.Name())
	}
	return f, nil
}

func (db userDB) byUID(uid int64) *user.User {
	for i := range db.users {
		if int64(db.users[i].Uid) == uid {
			return &db.users[i]
		}
	}
	return nil
}

func (db userDB) byName(name string) *user.User {
	for i := range db.users {
		if db.users[i].Name == name {
			return &db.users[i]
		}
	}
	return nil
}

func (db userDB) groupByName(name string) *user.Group {
	for i := range db.groups {
		if db.groups[i].Name == name {
			return &db.groups[i]
		}
	}
	return nil
}

// resolvedUser is the process's identity.
type resolvedUser struct {
	uid, gid uint32
	groups   []uint32 // additional gids, the primary first
	home     string
}

func idOf(field string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32-1 {
		return 0, fieldErr(field, "%d is not a valid id", v)
	}
	return uint32(v), nil
}

// resolveUser applies run_as_user, run_as_username and run_as_group, else
// the image's USER (uid, name, uid:gid, name:group and mixes), against the
// image's passwd and group files. The additional groups are the primary
// group, then (with the Merge policy) the /etc/group memberships of the
// user's name, then the config's supplemental groups.
func resolveUser(in *ContainerInput) (resolvedUser, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	db := readUserDB(in.Rootfs)
	var r resolvedUser
	var u *user.User
	var uid int64
	gidSet := false
	switch {
	case sc.GetRunAsUser() != nil:
		uid = sc.GetRunAsUser().GetValue()
		u = db.byUID(uid)
		if _, err := idOf("linux.security_context.run_as_user", uid); err != nil {
			return r, err
		}
	case sc.GetRunAsUsername() != "":
		name := sc.GetRunAsUsername()
		if u = db.byName(name); u == nil {
			return r, fieldErr("linux.security_context.run_as_username", "user %q is not in the image's /etc/passwd", name)
		}
		uid = int64(u.Uid)
	default:
		userPart, groupPart, _ := strings.Cut(in.Image.User, ":")
		switch n, err := strconv.ParseInt(userPart, 10, 64); {
		case userPart == "":
			u = db.byUID(0)
		case err == nil:
			if _, err := idOf("image.user", n); err != nil {
				return r, err
			}
			uid, u = n, db.byUID(n)
		default:
			if u = db.byName(userPart); u == nil {
				return r, fieldErr("image.user", "the image's USER %q is not in its /etc/passwd", userPart)
			}
			uid = int64(u.Uid)
		}
		if groupPart != "" {
			gid, err := strconv.ParseInt(groupPart, 10, 64)
			if err != nil {
				g := db.groupByName(groupPart)
				if g == nil {
					return r, fieldErr("image.user", "the image's USER group %q is not in its /etc/group", groupPart)
				}
				gid = int64(g.Gid)
			}
			if r.gid, err = idOf("image.user", gid); err != nil {
				return r, err
			}
			gidSet = true
		}
	}
	r.uid = uint32(uid)
	if !gidSet && u != nil {
		r.gid = uint32(u.Gid)
	}
	if g := sc.GetRunAsGroup(); g != nil {
		gid, err := idOf("linux.security_context.run_as_group", g.GetValue())
		if err != nil {
			return r, err
		}
		r.gid = gid
	}
	r.home = "/"
	if u != nil && u.Home != "" {
		r.home = u.Home
	}
	add := func(gid uint32) {
		if !slices.Contains(r.groups, gid) {
			r.groups = append(r.groups, gid)
		}
	}
	add(r.gid)
	if u != nil && sc.GetSupplementalGroupsPolicy() != runtimeapi.SupplementalGroupsPolicy_Strict {
		for _, g := range db.groups {
			if slices.Contains(g.List, u.Name) {
				add(uint32(g.Gid))
			}
		}
	}
	for i, g := range sc.GetSupplementalGroups() {
		gid, err := idOf("linux.security_context.supplemental_groups["+strconv.Itoa(i)+"]", g)
		if err != nil {
			return r, err
		}
		add(gid)
	}
	return r, nil
}

// setUser sets the process's user and groups, and HOME from the user's
// passwd entry unless the env sets it.
func setUser(g *generate.Generator, in *ContainerInput) error {
	r, err := resolveUser(in)
	if err != nil {
		return err
	}
	g.SetProcessUID(r.uid)
	g.SetProcessGID(r.gid)
	g.ClearProcessAdditionalGids()
	for _, gid := range r.groups {
		g.AddProcessAdditionalGid(gid)
	}
	for _, e := range g.Config.Process.Env {
		if strings.HasPrefix(e, "HOME=") {
			return nil
		}
	}
	g.AddProcessEnv("HOME", r.home)
	return nil
}
