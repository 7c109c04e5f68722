// Package netns creates a pod's network, IPC and UTS namespaces and pins
// them with bind mounts, so they outlive the thread that created them and
// exist before any process runs in the pod.
package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Kind names a namespace type as it appears under /proc/<pid>/ns.
type Kind string

const (
	Net Kind = "net"
	IPC Kind = "ipc"
	UTS Kind = "uts"
)

// AllKinds returns every kind Pin can create, e.g. for PathsFor in a
// startup sweep that no longer knows which kinds a sandbox had.
func AllKinds() []Kind { return []Kind{Net, IPC, UTS} }

func (k Kind) cloneFlag() (int, error) {
	switch k {
	case Net:
		return unix.CLONE_NEWNET, nil
	case IPC:
		return unix.CLONE_NEWIPC, nil
	case UTS:
		return unix.CLONE_NEWUTS, nil
	case User:
		return unix.CLONE_NEWUSER, nil
	}
	return 0, fmt.Errorf("unsupported namespace kind %q", string(k))
}

// NetPinPrefix prefixes network namespace pins in NetDir, so they are
// recognisable next to other tools' entries (e.g. `ip netns list`).
const NetPinPrefix = "cradle-"

// Request describes the namespaces to create for one sandbox.
type Request struct {
	ID       string            // sandbox ID; pin names derive from it
	NetDir   string            // absolute; network pin is NetDir/cradle-<ID>
	Dir      string            // absolute; IPC and UTS pins are Dir/<ID>/{ipc,uts}
	Kinds    []Kind            // namespaces to create; unlisted ones stay the host's
	Hostname string            // set in the new UTS namespace; needs UTS in Kinds
	Sysctls  map[string]string // applied in the new namespaces; dotted or slashed names
	// UIDs and GIDs, when set, give the pod a user namespace (pinned as
	// Dir/<ID>/user) that owns the other new namespaces.
	UIDs, GIDs []IDMap
}

// Pins holds absolute pin paths; a field is "" when that kind is not pinned.
type Pins struct {
	Net, IPC, UTS, User string
}

func (p Pins) paths() []string {
	var out []string
	for _, s := range []string{p.Net, p.IPC, p.UTS, p.User} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// PathsFor returns where Pin puts (or put) the pins for req.Kinds, without
// touching the filesystem; kinds whose directory is empty get no path.
func PathsFor(req Request) Pins {
	var p Pins
	for _, k := range req.Kinds {
		switch k {
		case Net:
			if req.NetDir != "" {
				p.Net = filepath.Join(req.NetDir, NetPinPrefix+req.ID)
			}
		case IPC, UTS:
			if req.Dir == "" {
				continue
			}
			path := filepath.Join(req.Dir, req.ID, string(k))
			if k == IPC {
				p.IPC = path
			} else {
				p.UTS = path
			}
		}
	}
	if (len(req.UIDs) > 0 || slices.Contains(req.Kinds, User)) && req.Dir != "" {
		p.User = filepath.Join(req.Dir, req.ID, string(User))
	}
	return p
}

func validID(id string) error {
	switch {
	case id == "", id == ".", id == "..":
		return fmt.Errorf("invalid sandbox ID %q", id)
	case strings.ContainsAny(id, "/\x00"):
		return fmt.Errorf("invalid sandbox ID %q: contains '/' or NUL", id)
	case len(NetPinPrefix)+len(id) > 255:
		return fmt.Errorf("invalid sandbox ID %q: too long for a file name", id)
	}
	return nil
}

// Pin creates the namespaces in req.Kinds, sets the hostname, brings up lo
// and applies the sysctls inside them, then bind-mounts each namespace onto
// its pin file. On error everything Pin created is removed again.
func Pin(req Request) (_ Pins, retErr error) {
	if err := validID(req.ID); err != nil {
		return Pins{}, err
	}
	has := map[Kind]bool{}
	flags := 0
	for _, k := range req.Kinds {
		f, err := k.cloneFlag()
		if err != nil {
			return Pins{}, err
		}
		has[k] = true
		flags |= f
	}
	if has[Net] && !filepath.IsAbs(req.NetDir) {
		return Pins{}, fmt.Errorf("network namespace directory %q is not absolute", req.NetDir)
	}
	userns := len(req.UIDs) > 0
	if has[User] && !userns {
		return Pins{}, errors.New("a user namespace needs UID and GID mappings")
	}
	delete(has, User)
	flags &^= unix.CLONE_NEWUSER
	if userns {
		if err := ValidateIDMaps(req.UIDs, req.GIDs); err != nil {
			return Pins{}, err
		}
	}
	if (has[IPC] || has[UTS] || userns) && !filepath.IsAbs(req.Dir) {
		return Pins{}, fmt.Errorf("namespace directory %q is not absolute", req.Dir)
	}
	if req.Hostname != "" && !has[UTS] {
		return Pins{}, fmt.Errorf("hostname %q needs a new UTS namespace: setting it would affect the host", req.Hostname)
	}
	sysctls, err := validate(req.Sysctls, has)
	if err != nil {
		return Pins{}, err
	}
	for _, s := range sysctls {
		if s.dotted == "kernel.hostname" && req.Hostname != "" && s.value != req.Hostname {
			return Pins{}, fmt.Errorf("sysctl %q=%q conflicts with hostname %q", s.name, s.value, req.Hostname)
		}
	}
	if flags == 0 && !userns {
		return Pins{}, nil
	}

	pins := PathsFor(req) // absolute and clean: the dirs were checked above

	var created []string // pin files this call made, so cleanup never removes others'
	idDir := ""          // per-sandbox directory, if this call made it
	defer func() {
		if retErr == nil {
			return
		}
		var errs []error
		for _, p := range created {
			errs = append(errs, Unpin(p))
		}
		if idDir != "" {
			if err := os.Remove(idDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove %s: %w", idDir, err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			retErr = fmt.Errorf("%w (cleanup: %w)", retErr, err)
		}
	}()

	if has[Net] {
		if err := prepareDir(filepath.Dir(pins.Net)); err != nil {
			return Pins{}, err
		}
	}
	if has[IPC] || has[UTS] || userns {
		// IPC and UTS pins stay in the daemon's private dir: only the
		// runtime opens them, and a self-bind mount there would outlive
		// every pod. Containers get rslave root propagation from runc, so
		// unmounting a pin still reaches their copies.
		dir := filepath.Clean(req.Dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Pins{}, fmt.Errorf("create pin directory: %w", err)
		}
		d := filepath.Join(dir, req.ID)
		switch err := os.Mkdir(d, 0o755); {
		case err == nil:
			idDir = d
		case !errors.Is(err, fs.ErrExist):
			return Pins{}, fmt.Errorf("create namespace directory: %w", err)
		}
	}

	var mounts []pinMount
	for _, m := range []pinMount{{User, pins.User}, {Net, pins.Net}, {IPC, pins.IPC}, {UTS, pins.UTS}} {
		if m.pin == "" {
			continue
		}
		f, err := os.OpenFile(m.pin, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return Pins{}, fmt.Errorf("create %s namespace pin: %w", m.kind, err)
		}
		created = append(created, m.pin)
		if err := f.Close(); err != nil {
			return Pins{}, fmt.Errorf("create %s namespace pin: %w", m.kind, err)
		}
		mounts = append(mounts, m)
	}

	if userns {
		if err := inHolder(flags, req, mounts); err != nil {
			return Pins{}, fmt.Errorf("pin namespaces of sandbox %s: %w", req.ID, err)
		}
		return pins, nil
	}
	err = inNewNamespaces(flags, func() error {
		if has[UTS] && req.Hostname != "" {
			if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
				return fmt.Errorf("set hostname %q: %w", req.Hostname, err)
			}
		}
		if has[Net] {
			if err := loopbackUp(); err != nil {
				return err
			}
		}
		for _, s := range sysctls {
			if err := s.write(); err != nil {
				return err
			}
		}
		for _, m := range mounts {
			// thread-self, not self: only this thread is in the new namespaces.
			src := "/proc/thread-self/ns/" + string(m.kind)
			if err := unix.Mount(src, m.pin, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind-mount %s namespace onto %s: %w", m.kind, m.pin, err)
			}
			if testHookAfterMount != nil {
				if err := testHookAfterMount(m.pin); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return Pins{}, fmt.Errorf("pin namespaces of sandbox %s: %w", req.ID, err)
	}
	return pins, nil
}

// testHookAfterMount lets tests fail Pin after a pin is mounted.
var testHookAfterMount func(pin string) error

// pinMount is one namespace to bind-mount onto its pin file.
type pinMount struct {
	kind Kind
	pin  string
}

// inNewNamespaces runs fn on a dedicated OS thread moved into new namespaces
// (unshare flags), then moves the thread back. Namespaces other than
// mount and user can be unshared per thread, which keeps this safe in a
// multi-threaded Go process.
func inNewNamespaces(flags int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := runUnshared(flags, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		// Otherwise the goroutine exits locked and the runtime kills the
		// thread rather than reuse it in the wrong namespaces.
		errc <- err
	}()
	return <-errc
}

func runUnshared(flags int, fn func() error) (restored bool, err error) {
	var orig threadNamespaces
	defer orig.close()
	for _, k := range AllKinds() {
		f, _ := k.cloneFlag()
		if flags&f == 0 {
			continue
		}
		if err := orig.save(k, f); err != nil {
			return true, err
		}
	}
	if err := unix.Unshare(flags); err != nil {
		return true, fmt.Errorf("unshare namespaces: %w", err)
	}
	return orig.restore(fn())
}

// threadNamespaces are the calling thread's namespaces of the kinds it
// is about to leave, held open so that it can go back.
type threadNamespaces []struct{ fd, nstype int }

// save opens the thread's current namespace of kind k (clone flag f).
func (t *threadNamespaces) save(k Kind, f int) error {
	fd, err := unix.Open("/proc/thread-self/ns/"+string(k), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open current %s namespace: %w", k, err)
	}
	*t = append(*t, struct{ fd, nstype int }{fd, f})
	return nil
}

// restore moves the thread back into every saved namespace and passes err
// on; restored is false when the thread could not be moved back, and must
// then not be reused.
func (t threadNamespaces) restore(err error) (restored bool, _ error) {
	var errs []error
	for _, s := range t {
		if e := unix.Setns(s.fd, s.nstype); e != nil {
			errs = append(errs, fmt.Errorf("restore namespace (type %#x): %w", s.nstype, e))
		}
	}
	if len(errs) > 0 {
		return false, errors.Join(append([]error{err}, errs...)...)
	}
	return true, err
}

// close is deferred before any save, so it takes a pointer: a value
// receiver would be the empty slice of that moment, and leak every fd.
func (t *threadNamespaces) close() {
	for _, s := range *t {
		unix.Close(s.fd)
	}
}

// loopbackUp brings up lo in the calling thread's network namespace; a new
// netns starts with lo down and pods expect localhost to work.
func loopbackUp() error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink in new network namespace: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

var sharedMu sync.Mutex

// prepareDir creates mnt (0755) and makes it a shared mount, bind-mounting
// it onto itself first if it is not a mount point, as `ip netns` does. Pins
// then propagate into mount namespaces created later (containers, CNI
// plugins, daemons) and, more importantly, so do their unmounts: a copy left
// behind in another mount namespace would keep the namespace alive. Making
// an already shared mount shared again is a no-op, so this runs every time
// and repairs a mount someone removed.
func prepareDir(mnt string) error {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return fmt.Errorf("create pin directory: %w", err)
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	err := unix.Mount("", mnt, "", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) { // EINVAL: not a mount point yet
		return fmt.Errorf("make %s a shared mount: %w", mnt, err)
	}
	if err := unix.Mount(mnt, mnt, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", mnt, err)
	}
	if err := unix.Mount("", mnt, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s a shared mount: %w", mnt, err)
	}
	return nil
}

// IsNSFS reports whether path is a namespace file, such as a live pin.
func IsNSFS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Unpin unmounts path (lazily, so open handles keep working) and removes it.
// A missing path or "" is not an error; a file that is not a mount point is
// just removed. It needs CAP_SYS_ADMIN.
func Unpin(path string) error {
	if path == "" {
		return nil
	}
	// Loop in case the pin was mounted more than once.
	for i := 0; ; i++ {
		err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		if err == nil {
			if i > 64 {
				return fmt.Errorf("unmount %s: still mounted after %d unmounts", path, i)
			}
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.EINVAL) { // not (or no longer) a mount point
			break
		}
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pin: %w", err)
	}
	return nil
}

// UnpinAll unpins every path in p and then removes the per-sandbox
// directory of the IPC and UTS pins once it is empty.
func UnpinAll(p Pins) error {
	var errs []error
	for _, path := range p.paths() {
		errs = append(errs, Unpin(path))
	}
	var dirs []string
	for _, path := range []string{p.IPC, p.UTS, p.User} {
		if path != "" && !slices.Contains(dirs, filepath.Dir(path)) {
			dirs = append(dirs, filepath.Dir(path))
		}
	}
	for _, d := range dirs {
		err := os.Remove(d)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove namespace directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// List returns the sorted IDs of sandboxes that have pins (or leftovers of
// them) in netDir or dir; either may be "" or missing.
func List(netDir, dir string) ([]string, error) {
	seen := map[string]bool{}
	if netDir != "" {
		ents, err := os.ReadDir(netDir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list network namespace pins: %w", err)
		}
		for _, e := range ents {
			if id, ok := strings.CutPrefix(e.Name(), NetPinPrefix); ok && id != "" {
				seen[id] = true
			}
		}
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("list namespace pins: %w", err)
		}
		for _, e := range ents {
			if e.IsDir() {
				seen[e.Name()] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}
