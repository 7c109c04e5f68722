package oci

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FieldError is bad input in a named CRI field; the server maps it to
// InvalidArgument.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Annotation keys that Kata and other VM runtimes read, plus CRI-O's.
const (
	AnnContainerType    = "io.kubernetes.cri.container-type"
	AnnSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnContainerName    = "io.kubernetes.cri.container-name"
	AnnImageName        = "io.kubernetes.cri.image-name"
	AnnCrioType         = "io.kubernetes.cri-o.ContainerType"
	AnnCrioSandboxID    = "io.kubernetes.cri-o.SandboxID"
	AnnCrioSandboxName  = "io.kubernetes.cri-o.SandboxName"
	AnnCrioName         = "io.kubernetes.cri-o.ContainerName"
	AnnCrioImageName    = "io.kubernetes.cri-o.ImageName"
)

// Sandbox is what a container takes from its pod.
type Sandbox struct {
	ID, Name, Namespace, UID string
	Hostname                 string
	NetNS, IPCNS, UTSNS      string // pinned paths; "" means the host's
	PIDNS                    string // a PID namespace to join; "" with HostPID false means a new one
	HostPID                  bool
	HostsFile, ResolvFile    string
	HostnameFile, ShmPath    string
	CgroupParent             string
	Sysctls                  map[string]string
}

// Defaults are daemon-wide settings that shape every spec.
type Defaults struct {
	Capabilities   []string // the default set, "CAP_" names
	Bounding       []string // the daemon's bounding set: what privileged gets
	MinOOMScoreAdj int      // the lowest oom_score_adj the daemon may set
	Rlimits        []specs.POSIXRlimit
	PidsLimit      int64
}

// ContainerInput is everything ContainerSpec needs; it does no I/O beyond
// reading the image's /etc/passwd and /etc/group under Rootfs and
// profile files named by the config.
type ContainerInput struct {
	ID        string
	Config    *runtimeapi.ContainerConfig
	Image     imgspecv1.ImageConfig
	ImageName string
	Rootfs    string
	Sandbox   Sandbox
	Defaults  Defaults
	// Privileged is allowed only when the pod is privileged.
	PodPrivileged bool
}

// ContainerSpec turns a CRI ContainerConfig into an OCI runtime spec.
func ContainerSpec(in *ContainerInput) (*specs.Spec, error) {
	cfg := in.Config
	g, err := generate.New("linux")
	if err != nil {
		return nil, fmt.Errorf("base spec: %w", err)
	}
	g.HostSpecific = false
	g.SetRootPath(in.Rootfs)
	lx := cfg.GetLinux()
	sc := lx.GetSecurityContext()
	g.SetRootReadonly(sc.GetReadonlyRootfs())

	args, err := processArgs(cfg, in.Image)
	if err != nil {
		return nil, err
	}
	g.SetProcessArgs(args)
	cwd := cfg.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	g.SetProcessCwd(cwd)
	g.SetProcessTerminal(cfg.GetTty())
	g.ClearProcessEnv()
	for _, e := range mergeEnv(in.Image.Env, cfg.GetEnvs(), cfg.GetTty()) {
		g.AddProcessEnv(e[0], e[1])
	}
	// The base spec carries a placeholder hostname; in the host's UTS
	// namespace (Hostname "") runc refuses any.
	g.SetHostname(in.Sandbox.Hostname)
	g.Config.Process.Rlimits = append([]specs.POSIXRlimit(nil), in.Defaults.Rlimits...)

	if err := setUser(&g, in); err != nil {
		return nil, err
	}
	if err := setNamespaces(&g, in); err != nil {
		return nil, err
	}
	if err := setMounts(&g, in); err != nil {
		return nil, err
	}
	if err := setSecurity(&g, in); err != nil {
		return nil, err
	}
	setResources(&g, in)
	if err := setDevices(&g, in); err != nil {
		return nil, err
	}
	for k, v := range in.Sandbox.Sysctls {
		g.AddLinuxSysctl(k, v)
	}
	setAnnotations(&g, in)
	g.SetLinuxCgroupsPath(filepath.Join(cgroupParent(in.Sandbox.CgroupParent), "cradle-"+in.ID))
	return g.Config, nil
}

func cgroupParent(p string) string {
	if p == "" {
		return "/cradle"
	}
	return p
}

// processArgs merges command and args with the image the Kubernetes way.
func processArgs(cfg *runtimeapi.ContainerConfig, img imgspecv1.ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(cfg.GetCommand()) > 0:
		out = append(append(out, cfg.GetCommand()...), cfg.GetArgs()...)
	case len(cfg.GetArgs()) > 0:
		out = append(append(out, img.Entrypoint...), cfg.GetArgs()...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 {
		return nil, fieldErr("config.command", "no command given and the image has no Entrypoint or Cmd")
	}
	return out, nil
}

// mergeEnv applies the config's env over the image's; the config wins.
func mergeEnv(image []string, cfg []*runtimeapi.KeyValue, tty bool) [][2]string {
	idx := map[string]int{}
	var out [][2]string
	set := func(k, v string) {
		if i, ok := idx[k]; ok {
			out[i][1] = v
			return
		}
		idx[k] = len(out)
		out = append(out, [2]string{k, v})
	}
	set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if tty {
		set("TERM", "xterm")
	}
	for _, e := range image {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	for _, kv := range cfg {
		set(kv.GetKey(), string(kv.GetValue()))
	}
	return out
}

func setNamespaces(g *generate.Generator, in *ContainerInput) error {
	sb := in.Sandbox
	nsOpts := in.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	set := func(typ, path string) {
		_ = g.RemoveLinuxNamespace(typ)
		if path != "host" {
			_ = g.AddOrReplaceLinuxNamespace(typ, path)
		}
	}
	hostOr := func(p string) string {
		if p == "" {
			return "host"
		}
		return p
	}
	set(string(specs.NetworkNamespace), hostOr(sb.NetNS))
	set(string(specs.IPCNamespace), hostOr(sb.IPCNS))
	set(string(specs.UTSNamespace), hostOr(sb.UTSNS))
	switch nsOpts.GetPid() {
	case runtimeapi.NamespaceMode_NODE:
		set(string(specs.PIDNamespace), "host")
	case runtimeapi.NamespaceMode_CONTAINER:
		set(string(specs.PIDNamespace), "")
	default: // POD and TARGET: the server resolved the path to join
		switch {
		case sb.HostPID:
			set(string(specs.PIDNamespace), "host")
		default:
			set(string(specs.PIDNamespace), sb.PIDNS)
		}
	}
	_ = g.AddOrReplaceLinuxNamespace(string(specs.MountNamespace), "")
	return nil
}

func setAnnotations(g *generate.Generator, in *ContainerInput) {
	keys := make([]string, 0, len(in.Config.GetAnnotations()))
	for k := range in.Config.GetAnnotations() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g.AddAnnotation(k, in.Config.GetAnnotations()[k])
	}
	name := in.Config.GetMetadata().GetName()
	for k, v := range map[string]string{
		AnnContainerType: "container", AnnCrioType: "container",
		AnnSandboxID: in.Sandbox.ID, AnnCrioSandboxID: in.Sandbox.ID,
		AnnSandboxName: in.Sandbox.Name, AnnCrioSandboxName: in.Sandbox.Name,
		AnnSandboxNamespace: in.Sandbox.Namespace, AnnSandboxUID: in.Sandbox.UID,
		AnnContainerName: name, AnnCrioName: name,
		AnnImageName: in.ImageName, AnnCrioImageName: in.ImageName,
	} {
		g.AddAnnotation(k, v)
	}
}

// MarkSandbox turns a container spec into the pod's sandbox (infra) spec,
// as VM runtimes tell them apart.
func MarkSandbox(s *specs.Spec) {
	s.Annotations[AnnContainerType] = "sandbox"
	s.Annotations[AnnCrioType] = "sandbox"
	delete(s.Annotations, AnnContainerName)
	delete(s.Annotations, AnnCrioName)
}
