package netns

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
)

var (
	// ErrNotNamespaced marks a global sysctl, which a pod must not set.
	ErrNotNamespaced = errors.New("is not namespaced")
	// ErrHostNamespace marks a sysctl of a namespace the pod shares with
	// the host.
	ErrHostNamespace = errors.New("would affect the host")
)

// ipcSysctls are the individually namespaced IPC sysctls (kubelet's list);
// fs.mqueue.* is handled by prefix.
var ipcSysctls = []string{
	"kernel.shm_rmid_forced",
	"kernel.shmmax",
	"kernel.shmall",
	"kernel.shmmni",
	"kernel.msgmax",
	"kernel.msgmnb",
	"kernel.msgmni",
	"kernel.sem",
}

// sysctlKind returns the namespace a dotted sysctl name belongs to.
func sysctlKind(dotted string) (Kind, bool) {
	switch {
	case slices.Contains(ipcSysctls, dotted), strings.HasPrefix(dotted, "fs.mqueue."):
		return IPC, true
	case strings.HasPrefix(dotted, "net."):
		return Net, true
	case dotted == "kernel.hostname", dotted == "kernel.domainname":
		return UTS, true
	}
	return "", false
}

// toDots converts a slash-separated name (net/ipv4/conf/eth0.100/rp_filter)
// to the dotted form (net.ipv4.conf.eth0/100.rp_filter), as the kubelet
// does; dots inside a component become slashes so the mapping is reversible.
func toDots(name string) string {
	if i := strings.IndexAny(name, "./"); i < 0 || name[i] == '.' {
		return name
	}
	return swapSeparators(name)
}

func swapSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

type sysctl struct {
	name   string // as given, for error messages
	dotted string
	path   string // under /proc/sys
	value  string
}

func parseSysctl(name, value string) (sysctl, error) {
	dotted := toDots(name)
	rel := swapSeparators(dotted)
	for _, c := range strings.Split(rel, "/") {
		// Rejecting "." and ".." keeps the path inside /proc/sys.
		if c == "" || c == "." || c == ".." || strings.ContainsRune(c, 0) {
			return sysctl{}, fmt.Errorf("sysctl %q: invalid name", name)
		}
	}
	return sysctl{name: name, dotted: dotted, path: "/proc/sys/" + rel, value: value}, nil
}

// validate checks every sysctl against the namespaces the pod gets (has)
// and returns them sorted by name, so they are applied deterministically.
func validate(m map[string]string, has map[Kind]bool) ([]sysctl, error) {
	var out []sysctl
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(m)) {
		s, err := parseSysctl(name, m[name])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		kind, ok := sysctlKind(s.dotted)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("sysctl %q %w", name, ErrNotNamespaced))
		case !has[kind]:
			errs = append(errs, fmt.Errorf("sysctl %q %w: the pod uses the host's %s namespace", name, ErrHostNamespace, kind))
		default:
			out = append(out, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ValidateSysctls checks a pod's sysctls the way the kubelet classifies
// them: only namespaced ones are allowed, and only when the pod has its own
// namespace of that kind. UTS sysctls follow hostNet, because CRI pods share
// the host's UTS namespace exactly when they use host networking. Whether a
// sysctl exists is only known inside the pod's namespaces (e.g. per-device
// net.* entries, init_net-only net.core.*), so Pin checks that.
func ValidateSysctls(s map[string]string, hostNet, hostIPC bool) error {
	_, err := validate(s, map[Kind]bool{Net: !hostNet, IPC: !hostIPC, UTS: !hostNet})
	return err
}

// write sets the sysctl for the calling thread's namespaces: /proc/sys
// resolves net, ipc and uts entries through the current task (thread), not
// the thread group, which the tests verify.
func (s sysctl) write() error {
	f, err := os.OpenFile(s.path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sysctl %q does not exist in the pod's namespaces: %w", s.name, err)
	}
	if err != nil {
		return fmt.Errorf("set sysctl %q: %w", s.name, err)
	}
	_, err = f.Write([]byte(s.value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set sysctl %q to %q: %w", s.name, s.value, err)
	}
	return nil
}

// CheckNamespaced says whether a sysctl name is valid and namespaced at
// all, as a default applied to every pod must be.
func CheckNamespaced(name string) error {
	s, err := parseSysctl(name, "")
	if err != nil {
		return err
	}
	if _, ok := sysctlKind(s.dotted); !ok {
		return fmt.Errorf("sysctl %q %w", name, ErrNotNamespaced)
	}
	return nil
}

// WithDefaults returns the sysctls a pod gets: the runtime's defaults that
// apply to the namespaces the pod has of its own, overridden by the pod's
// own. A default for a namespace the pod shares with the host is left out
// (as CRI-O does): it would change the host. Names are compared in their
// dotted form, so "net/ipv4/ip_forward" in the pod overrides
// "net.ipv4.ip_forward" in the defaults.
func WithDefaults(defaults, pod map[string]string, hostNet, hostIPC bool) map[string]string {
	if len(defaults) == 0 {
		return pod
	}
	has := map[Kind]bool{Net: !hostNet, IPC: !hostIPC, UTS: !hostNet}
	own := make(map[string]bool, len(pod))
	for name := range pod {
		own[toDots(name)] = true
	}
	out := make(map[string]string, len(defaults)+len(pod))
	for name, value := range defaults {
		dotted := toDots(name)
		if kind, ok := sysctlKind(dotted); !ok || !has[kind] || own[dotted] {
			continue
		}
		out[name] = value
	}
	maps.Copy(out, pod)
	return out
}
