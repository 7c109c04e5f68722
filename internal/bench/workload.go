package bench

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Target is one runtime under test.
type Target struct {
	Name     string // a short label: cradle, containerd
	Endpoint string // unix:///path/to/socket
	PID      int    // the daemon's PID; 0 finds it by the socket
}

// SocketPath is the filesystem path of the endpoint.
func (t Target) SocketPath() string { return strings.TrimPrefix(t.Endpoint, "unix://") }

// ParseTarget parses NAME=unix:///PATH[,pid=N].
func ParseTarget(s string) (Target, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Target{}, fmt.Errorf("runtime %q: want NAME=unix:///PATH[,pid=N]", s)
	}
	if strings.ContainsAny(name, " \t/") {
		return Target{}, fmt.Errorf("runtime name %q: no spaces or slashes", name)
	}
	t := Target{Name: name}
	parts := strings.Split(rest, ",")
	t.Endpoint = parts[0]
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return Target{}, fmt.Errorf("runtime %s endpoint: %w", name, err)
	}
	if u.Scheme != "unix" || !path.IsAbs(u.Path) || u.Host != "" {
		return Target{}, fmt.Errorf("runtime %s endpoint %q: want unix:///absolute/path", name, t.Endpoint)
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "pid":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return Target{}, fmt.Errorf("runtime %s: bad pid %q", name, v)
			}
			t.PID = n
		default:
			return Target{}, fmt.Errorf("runtime %s: unknown option %q", name, k)
		}
	}
	return t, nil
}

// Variant is a pod shape the benchmark runs.
type Variant struct {
	Name  string
	Title string
	PID   runtimeapi.NamespaceMode
}

// Variants are the pod shapes, by name. With a PID namespace per container
// cradle runs no infra process while containerd always runs its pause
// container; with a shared PID namespace both run a process as the pod's
// PID 1 (cradle its PID holder, containerd pause), the like-for-like
// comparison.
var Variants = []Variant{
	{Name: "pid-container", PID: runtimeapi.NamespaceMode_CONTAINER,
		Title: "PID namespace per container (cradle: no infra process; containerd: pause container)"},
	{Name: "pid-pod", PID: runtimeapi.NamespaceMode_POD,
		Title: "shared PID namespace (cradle: its PID holder; containerd: pause container)"},
}

// ParseVariants parses a comma-separated list of variant names.
func ParseVariants(s string) ([]Variant, error) {
	var out []Variant
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(Variants, func(v Variant) bool { return v.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("unknown variant %q (have pid-container, pid-pod)", name)
		}
		if slices.ContainsFunc(out, func(v Variant) bool { return v.Name == name }) {
			return nil, fmt.Errorf("variant %q given twice", name)
		}
		out = append(out, Variants[i])
	}
	if len(out) == 0 {
		return nil, errors.New("no variants")
	}
	return out, nil
}

// LabelRun is the label every pod and container of a run carries, with the
// run's ID as value; the final sweep removes whatever carries it.
const LabelRun = "io.cradle-bench/run"

// Workload is what every iteration runs: one pod with one long-running
// container, identical for every runtime.
type Workload struct {
	Image      string   // the container image
	Command    []string // its command, a process that stays up
	Exec       []string // the ExecSync command
	RunID      string
	CgroupRoot string // pods' cgroup parents go below <root>/<target>
	LogRoot    string // pods' log directories go below <root>/<target>
}

// CgroupTree is the cgroup below which a target's pods of a variant live.
func (w Workload) CgroupTree(target string, v Variant) string {
	return path.Join(w.CgroupRoot, target, v.Name)
}

// PodConfig is the sandbox config of pod number seq; uid must be unique.
func (w Workload) PodConfig(target string, v Variant, seq int, uid string) *runtimeapi.PodSandboxConfig {
	name := fmt.Sprintf("bench-%s-%d", v.Name, seq)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name: name, Uid: uid, Namespace: "cradle-bench",
		},
		Hostname:     name,
		LogDirectory: filepath.Join(w.LogRoot, target, uid),
		Labels:       map[string]string{LabelRun: w.RunID},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			// The kubelet's cgroupfs layout: a cgroup per pod.
			CgroupParent: path.Join(w.CgroupTree(target, v), "pod"+uid),
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: v.PID},
			},
		},
	}
}

// ContainerConfig is the config of the pod's container.
func (w Workload) ContainerConfig(v Variant) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "main"},
		Image:    &runtimeapi.ImageSpec{Image: w.Image},
		Command:  slices.Clone(w.Command),
		LogPath:  "main.log",
		Labels:   map[string]string{LabelRun: w.RunID},
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: v.PID},
			},
		},
	}
}

// IsWorkload reports whether p is a container's main process: its command
// line is the workload's command (argv[0] compared by base name).
func (w Workload) IsWorkload(p Proc) bool {
	if len(p.Cmdline) != len(w.Command) || len(w.Command) == 0 {
		return false
	}
	if path.Base(p.Cmdline[0]) != path.Base(w.Command[0]) {
		return false
	}
	return slices.Equal(p.Cmdline[1:], w.Command[1:])
}
