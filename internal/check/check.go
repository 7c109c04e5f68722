// Package check inspects the host for what the daemon needs, and says how
// to fix what is missing.
package check

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/cradle-runtime/cradle/internal/config"
	"golang.org/x/sys/unix"
)

// Result is one check's outcome.
type Result struct {
	Name  string
	OK    bool
	Fatal bool // the daemon cannot run without it
	Info  string
	Fix   string
}

func (r Result) String() string {
	status := "ok  "
	if !r.OK {
		status = "FAIL"
		if !r.Fatal {
			status = "WARN"
		}
	}
	s := fmt.Sprintf("%s %-18s %s", status, r.Name, r.Info)
	if !r.OK && r.Fix != "" {
		s += " (fix: " + r.Fix + ")"
	}
	return s
}

// Run performs every check against cfg.
func Run(cfg *config.Config) []Result {
	var out []Result
	for _, name := range cfg.HandlerNames() {
		h, _ := cfg.Handler(name)
		out = append(out, binary("runtime "+name, h.Path, "apt-get install runc, or set [runtime.handlers."+name+"] path"))
	}
	out = append(out, binary("conmon", cfg.Runtime.Conmon, "apt-get install conmon, or set [runtime] conmon"))
	out = append(out, cniPlugins(cfg), cniConfig(cfg), cgroups(), overlay(), netnsCheck(), seccompCheck())
	return out
}

func binary(name, path, fix string) Result {
	r := Result{Name: name, Fatal: true, Fix: fix}
	p, err := exec.LookPath(path)
	if err != nil {
		r.Info = path + " not found"
		return r
	}
	out, _ := exec.Command(p, "--version").Output()
	r.OK, r.Info = true, p+" "+strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
	return r
}

func cniPlugins(cfg *config.Config) Result {
	r := Result{Name: "CNI plugins", Fatal: false, Fix: "apt-get install containernetworking-plugins"}
	for _, d := range cfg.Network.CNIPluginDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			r.OK, r.Info = true, "bridge found in "+d
			return r
		}
	}
	r.Info = "no bridge plugin in " + strings.Join(cfg.Network.CNIPluginDirs, ", ")
	return r
}

func cniConfig(cfg *config.Config) Result {
	r := Result{Name: "CNI config", Fix: "write a conflist to " + cfg.Network.CNIConfDir + " (make run writes a default bridge config)"}
	files, err := libcni.ConfFiles(cfg.Network.CNIConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil || len(files) == 0 {
		r.Info = "no network config in " + cfg.Network.CNIConfDir + "; only hostNetwork pods can run"
		return r
	}
	r.OK, r.Info = true, files[0]
	return r
}

func cgroups() Result {
	r := Result{Name: "cgroup mode", Fatal: true, Fix: "mount cgroupfs at /sys/fs/cgroup"}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		r.Info = err.Error()
		return r
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		r.OK, r.Info = true, "v2 (unified)"
	case unix.TMPFS_MAGIC:
		r.OK, r.Info = true, "v1"
		if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			r.Info = "v1 (hybrid, cgroup2 at /sys/fs/cgroup/unified)"
		}
	default:
		r.Info = fmt.Sprintf("unknown filesystem type %#x", st.Type)
	}
	return r
}

func overlay() Result {
	r := Result{Name: "overlay", Fix: "modprobe overlay (cradle falls back to vfs, which is slow)"}
	b, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(b), "\toverlay\n") {
		r.OK, r.Info = true, "overlay filesystem available"
		return r
	}
	r.Info = "overlay not in /proc/filesystems"
	return r
}

func netnsCheck() Result {
	r := Result{Name: "network namespaces", Fatal: true, Fix: "run as root on a kernel with CONFIG_NET_NS"}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		r.Info = err.Error()
		return r
	}
	if os.Geteuid() != 0 {
		r.Info = "not root: cannot create namespaces"
		return r
	}
	r.OK, r.Info = true, "supported"
	return r
}

func seccompCheck() Result {
	r := Result{Name: "seccomp", Fix: "use a kernel with CONFIG_SECCOMP_FILTER"}
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Seccomp:") {
			r.OK, r.Info = true, "supported"
			return r
		}
	}
	r.Info = "kernel does not report seccomp support"
	return r
}
