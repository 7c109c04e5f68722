// Package config holds cradle's configuration: built-in defaults, loading of
// the main TOML file plus drop-ins, validation and printing.
//
// The TOML key names (the `toml` struct tags) are a public contract: users
// write them in /etc/cradle. Every field carries a one-line `comment` tag that
// WriteTOML prints above the key.
package config

import (
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Default locations of the configuration on the host.
const (
	DefaultPath      = "/etc/cradle/cradle.toml"
	DefaultDropinDir = "/etc/cradle/cradle.d"
)

// ListenSocketMode is the file mode of the CRI socket named by Config.Listen;
// group access lets a kubelet in the socket's group connect without root.
const ListenSocketMode = 0o660

// Allowed values of the enumerated keys.
const (
	LogLevelDebug = "debug"
	LogLevelInfo  = "info"
	LogLevelWarn  = "warn"
	LogLevelError = "error"

	LogFormatText = "text"
	LogFormatJSON = "json"

	CgroupDriverCgroupfs = "cgroupfs"
	CgroupDriverSystemd  = "systemd"

	// InfraAuto runs an infra (pause) process only when the pod shares a PID
	// namespace; InfraAlways runs one for every pod.
	InfraAuto   = "auto"
	InfraAlways = "always"

	HandlerTypeOCI = "oci"
	HandlerTypeVM  = "vm"

	StorageDriverOverlay = "overlay"
	StorageDriverVFS     = "vfs"
)

// Config is the complete daemon configuration.
type Config struct {
	Listen    string          `toml:"listen" comment:"CRI gRPC endpoint; only unix:// is supported (the socket is created with mode 0660)."`
	Root      string          `toml:"root" comment:"Directory for persistent state (images, containers); must be absolute."`
	RunRoot   string          `toml:"runroot" comment:"Directory for volatile state that is lost on reboot; must be absolute."`
	LogLevel  string          `toml:"log_level" comment:"Log verbosity: debug, info, warn or error."`
	LogFormat string          `toml:"log_format" comment:"Log output format: text or json."`
	Runtime   RuntimeConfig   `toml:"runtime" comment:"Container runtime settings."`
	Network   NetworkConfig   `toml:"network" comment:"Pod networking through CNI."`
	Image     ImageConfig     `toml:"image" comment:"Image pulling and storage."`
	Streaming StreamingConfig `toml:"streaming" comment:"Streaming server used by exec, attach and port-forward."`
	Stats     StatsConfig     `toml:"stats" comment:"Container and pod statistics."`
	NRI       NRIConfig       `toml:"nri" comment:"Node Resource Interface: plugins that observe and adjust pods and containers."`
	Metrics   MetricsConfig   `toml:"metrics" comment:"Prometheus metrics and profiling over HTTP; off unless address is set."`
	Tracing   TracingConfig   `toml:"tracing" comment:"OpenTelemetry spans of CRI calls and their steps, exported over OTLP/gRPC; off unless endpoint is set."`
}

// TracingConfig configures the OpenTelemetry trace exporter.
type TracingConfig struct {
	Endpoint               string `toml:"endpoint" comment:"OTLP/gRPC collector as host:port (e.g. \"127.0.0.1:4317\"); empty turns tracing off."`
	Insecure               bool   `toml:"insecure" comment:"Export without TLS, as to a collector on the node; otherwise TLS verified against the system's roots."`
	SamplingRatePerMillion int    `toml:"sampling_rate_per_million" comment:"New traces sampled per million, 0 to 1000000; a call whose caller (the kubelet) sent a trace follows its sampling decision."`
	ServiceName            string `toml:"service_name" comment:"service.name of the exported spans."`
}

// MetricsConfig configures the metrics endpoint.
type MetricsConfig struct {
	Address string `toml:"address" comment:"host:port serving /metrics (e.g. \"127.0.0.1:9090\"); empty turns metrics off."`
	Pprof   bool   `toml:"pprof" comment:"Also serve net/http/pprof under /debug/pprof/ on the metrics address (needs address)."`
}

// RuntimeConfig configures how containers are run.
type RuntimeConfig struct {
	DefaultHandler      string             `toml:"default_handler" comment:"Handler used when a pod names no RuntimeClass handler; must exist in [runtime.handlers]."`
	Conmon              string             `toml:"conmon" comment:"Path of the conmon container monitor binary."`
	CgroupDriver        string             `toml:"cgroup_driver" comment:"Cgroup manager: cgroupfs or systemd (must match the kubelet)."`
	CgroupParent        string             `toml:"cgroup_parent" comment:"Parent cgroup for pods that do not specify one."`
	DefaultCapabilities []string           `toml:"default_capabilities" comment:"Capabilities granted to containers by default (names without the CAP_ prefix)."`
	DefaultSysctls      []string           `toml:"default_sysctls" comment:"Namespaced sysctls set in every pod, as \"name=value\"; a pod's own of the same name wins."`
	DefaultUlimits      []string           `toml:"default_ulimits" comment:"Rlimits applied to every container, as \"name=soft:hard\" or \"name=value\" (e.g. \"nofile=1024:2048\")."`
	PidsLimit           int64              `toml:"pids_limit" comment:"Maximum number of processes per container; 0 or -1 means no limit."`
	LogSizeMax          int64              `toml:"log_size_max" comment:"Maximum container log size in bytes before rotation; -1 means unlimited."`
	InfraContainer      string             `toml:"infra_container" comment:"auto: a shared PID namespace is held by cradle's own PID holder, no infra container; always: every pod runs a pause infra container."`
	SeccompProfile      string             `toml:"seccomp_profile" comment:"JSON seccomp profile (moby format) for RuntimeDefault; empty means the built-in moby default. SIGHUP re-reads it."`
	Handlers            map[string]Handler `toml:"handlers" comment:"Runtime handlers, keyed by the RuntimeClass handler name."`

	CDISpecDirs                        []string `toml:"cdi_spec_dirs" comment:"Directories of CDI (Container Device Interface) specs that cdi_devices and cdi.k8s.io/ annotations name devices from; a later one wins."`
	DeviceOwnershipFromSecurityContext bool     `toml:"device_ownership_from_security_context" comment:"Give a non-root container's devices (ContainerConfig.devices) its uid and gid, so that it can use them (the kubelet's device plugins and DRA expect this)."`
}

// Handler is one runtime handler (a RuntimeClass handler name maps to one).
type Handler struct {
	Type        string   `toml:"type" comment:"Handler kind: oci (runc-compatible binary under conmon) or vm (a containerd shim v2: Kata, gVisor, containerd-shim-runc-v2)."`
	Path        string   `toml:"path" comment:"Path of the runtime binary (oci) or of the shim (vm); empty inherits the default handler's, if it is of the same type."`
	RuntimePath string   `toml:"runtime_path" comment:"vm handlers of a runc-based shim: the OCI runtime the shim runs (its BinaryName option); empty sends the shim no runc options (Kata, gVisor)."`
	MonitorEnv  []string `toml:"monitor_env" comment:"Extra KEY=value environment for the handler's monitor (conmon) or shim."`
	// MonitorCgroup keeps monitors out of the daemon's cgroup, as CRI-O's
	// conmon_cgroup and containerd's ShimCgroup do.
	MonitorCgroup string   `toml:"monitor_cgroup" comment:"cgroupfs path (such as /cradle-monitors) the handler's conmon or shim processes are moved into; empty keeps them in the daemon's cgroup. cgroupfs driver only."`
	RuntimeArgs   []string `toml:"runtime_args" comment:"oci handlers: extra global arguments for the runtime, before its subcommand (such as --debug)."`
	// PrivilegedWithoutHostDevices keeps host devices out of privileged containers.
	PrivilegedWithoutHostDevices bool     `toml:"privileged_without_host_devices" comment:"Privileged containers of this handler get no host devices (as for VM runtimes, whose guests have their own)."`
	Root                         string   `toml:"root" comment:"Runtime state directory; empty means <runroot>/runtime/<handler name>."`
	InfraContainer               string   `toml:"infra_container" comment:"Overrides runtime.infra_container for this handler: auto, always, or empty to inherit."`
	AllowedAnnotations           []string `toml:"allowed_annotations" comment:"Pod annotations (or prefixes ending in \"*\") passed through to this handler."`
}

// NetworkConfig configures CNI.
type NetworkConfig struct {
	CNIConfDir    string   `toml:"cni_conf_dir" comment:"Directory searched for CNI network configuration files."`
	CNIPluginDirs []string `toml:"cni_plugin_dirs" comment:"Directories searched, in order, for CNI plugin binaries."`
	CNICacheDir   string   `toml:"cni_cache_dir" comment:"CNI result cache directory; empty means <root>/cni-cache."`
	NetworkName   string   `toml:"network_name" comment:"Name of the CNI network to use; empty means the first config file in lexical order."`
}

// ImageConfig configures image handling.
type ImageConfig struct {
	PauseImage          string   `toml:"pause_image" comment:"Image whose process holds the pod namespaces when an infra container runs."`
	RegistriesConf      string   `toml:"registries_conf" comment:"containers-registries.conf(5) file with registry mirrors and search lists."`
	RegistriesD         string   `toml:"registries_d" comment:"containers-registries.d(5) directory with signature storage settings."`
	SignaturePolicy     string   `toml:"signature_policy" comment:"containers-policy.json(5) file deciding which images may be pulled."`
	StorageDriver       string   `toml:"storage_driver" comment:"Storage driver: overlay or vfs; empty means overlay with fallback to vfs."`
	PullProgressTimeout Duration `toml:"pull_progress_timeout" comment:"Cancel a pull that makes no progress for this long (Go duration, e.g. \"1m\"); 0 disables."`
	PinnedImages        []string `toml:"pinned_images" comment:"Images the kubelet's image GC must never remove, reported as pinned: full or short names (\"busybox:1.36\"), \"*\" matches any run of characters (\"registry.k8s.io/*\", \"*pause*\")."`
}

// StreamingConfig configures the streaming server.
type StreamingConfig struct {
	Address string `toml:"address" comment:"host:port the streaming server listens on; port 0 picks a free port."`

	TLSCertFile string   `toml:"tls_cert_file" comment:"PEM certificate (chain) the streaming server serves https with; set with tls_key_file, empty serves http."`
	TLSKeyFile  string   `toml:"tls_key_file" comment:"PEM private key of tls_cert_file."`
	IdleTimeout Duration `toml:"idle_timeout" comment:"Close an exec, attach or port-forward connection idle for this long (Go duration)."`
}

// StatsConfig configures stats collection.
type StatsConfig struct {
	CollectionPeriod Duration `toml:"collection_period" comment:"How often container and pod stats are collected into the cache the CRI serves from (Go duration)."`
}

// NRIConfig configures NRI. Enabled costs nothing until a plugin connects.
type NRIConfig struct {
	Enable           bool   `toml:"enable" comment:"Serve NRI plugins (a plugin that fails a hook fails the CRI call)."`
	SocketPath       string `toml:"socket_path" comment:"Unix socket external NRI plugins connect to."`
	PluginPath       string `toml:"plugin_path" comment:"Directory of NRI plugins the daemon starts itself."`
	PluginConfigPath string `toml:"plugin_config_path" comment:"Directory of configuration for the plugins in plugin_path."`
	// Process-wide in the NRI library: the last daemon built in a process wins.
	RegistrationTimeout Duration `toml:"plugin_registration_timeout" comment:"How long a plugin may take to register (Go duration)."`
	RequestTimeout      Duration `toml:"plugin_request_timeout" comment:"How long a plugin may take to handle one event, Synchronize included (Go duration)."`
}

// Default returns a fresh Config holding the built-in defaults.
func Default() *Config {
	return &Config{
		Listen:    "unix:///run/cradle/cradle.sock",
		Root:      "/var/lib/cradle",
		RunRoot:   "/run/cradle",
		LogLevel:  LogLevelInfo,
		LogFormat: LogFormatText,
		Runtime: RuntimeConfig{
			DefaultHandler: "runc",
			Conmon:         "/usr/bin/conmon",
			CgroupDriver:   CgroupDriverCgroupfs,
			CgroupParent:   "/cradle",
			DefaultCapabilities: []string{
				"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW",
				"SETGID", "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE",
				"SYS_CHROOT", "KILL", "AUDIT_WRITE",
			},
			// Empty rather than nil slices so that a printed and reloaded
			// config compares equal to the defaults.
			DefaultSysctls: []string{},
			DefaultUlimits: []string{},
			PidsLimit:      0,
			LogSizeMax:     -1,
			InfraContainer: InfraAuto,
			CDISpecDirs:    []string{"/etc/cdi", "/var/run/cdi"},
			Handlers: map[string]Handler{
				"runc": {
					Type:               HandlerTypeOCI,
					Path:               "/usr/sbin/runc",
					AllowedAnnotations: []string{},
					MonitorEnv:         []string{},
					RuntimeArgs:        []string{},
				},
			},
		},
		Network: NetworkConfig{
			CNIConfDir:    "/etc/cni/net.d",
			CNIPluginDirs: []string{"/opt/cni/bin", "/usr/lib/cni"},
		},
		Image: ImageConfig{
			PauseImage:          "registry.k8s.io/pause:3.10",
			RegistriesConf:      "/etc/containers/registries.conf",
			RegistriesD:         "/etc/containers/registries.d",
			SignaturePolicy:     "/etc/containers/policy.json",
			StorageDriver:       "", // overlay, or vfs where overlay cannot work
			PullProgressTimeout: Duration(time.Minute),
			PinnedImages:        []string{},
		},
		// 4h: the kubelet's and containerd's stream idle timeout.
		Streaming: StreamingConfig{Address: "127.0.0.1:0", IdleTimeout: Duration(4 * time.Hour)},
		Tracing:   TracingConfig{SamplingRatePerMillion: 1_000_000, ServiceName: "cradle"},
		Stats:     StatsConfig{CollectionPeriod: Duration(10 * time.Second)},
		NRI: NRIConfig{
			Enable:           true,
			SocketPath:       "/var/run/nri/nri.sock",
			PluginPath:       "/opt/nri/plugins",
			PluginConfigPath: "/etc/nri/conf.d",
			// The NRI library's own defaults, as containerd and CRI-O use.
			RegistrationTimeout: Duration(5 * time.Second),
			RequestTimeout:      Duration(2 * time.Second),
		},
	}
}

// Clone returns a deep copy, so callers may modify slices and handlers
// without affecting c.
func (c *Config) Clone() *Config {
	n := *c
	r := &n.Runtime
	r.DefaultCapabilities = slices.Clone(r.DefaultCapabilities)
	r.DefaultSysctls = slices.Clone(r.DefaultSysctls)
	r.DefaultUlimits = slices.Clone(r.DefaultUlimits)
	r.CDISpecDirs = slices.Clone(r.CDISpecDirs)
	r.Handlers = cloneHandlers(r.Handlers)
	n.Network.CNIPluginDirs = slices.Clone(n.Network.CNIPluginDirs)
	n.Image.PinnedImages = slices.Clone(n.Image.PinnedImages)
	return &n
}

func cloneHandlers(m map[string]Handler) map[string]Handler {
	if m == nil {
		return nil
	}
	out := maps.Clone(m)
	for name, h := range out {
		h.AllowedAnnotations = slices.Clone(h.AllowedAnnotations)
		h.MonitorEnv = slices.Clone(h.MonitorEnv)
		h.RuntimeArgs = slices.Clone(h.RuntimeArgs)
		out[name] = h
	}
	return out
}

// ListenPath returns the filesystem path of the unix socket in Listen.
func (c *Config) ListenPath() string {
	return strings.TrimPrefix(c.Listen, "unix://")
}

// HandlerNames returns the configured handler names, sorted.
func (c *Config) HandlerNames() []string {
	names := make([]string, 0, len(c.Runtime.Handlers))
	for name := range c.Runtime.Handlers {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Handler returns the handler called name; "" selects the default handler,
// as an empty RuntimeClass handler does in CRI. A handler without a path
// inherits the default handler's, when both are of one type.
func (c *Config) Handler(name string) (Handler, bool) {
	if name == "" {
		name = c.Runtime.DefaultHandler
	}
	h, ok := c.Runtime.Handlers[name]
	if ok && h.Path == "" {
		if d, dok := c.Runtime.Handlers[c.Runtime.DefaultHandler]; dok && d.Type == h.Type {
			h.Path = d.Path
		}
	}
	return h, ok
}

// HandlerRoot returns the runtime state directory for handler name: its
// explicit root, or <runroot>/runtime/<name>.
func (c *Config) HandlerRoot(name string) string {
	if h, ok := c.Runtime.Handlers[name]; ok && h.Root != "" {
		return h.Root
	}
	return filepath.Join(c.RunRoot, "runtime", name)
}

// InfraContainer returns the effective infra_container mode for handler
// name: always for a vm handler, whose sandbox is the pod's first task;
// otherwise the handler's override if set, else runtime.infra_container.
func (c *Config) InfraContainer(name string) string {
	if h, ok := c.Runtime.Handlers[name]; ok && h.Type == HandlerTypeVM {
		return InfraAlways
	}
	if h, ok := c.Runtime.Handlers[name]; ok && h.InfraContainer != "" {
		return h.InfraContainer
	}
	return c.Runtime.InfraContainer
}

// CNICacheDir returns network.cni_cache_dir, or <root>/cni-cache.
func (c *Config) CNICacheDir() string {
	if c.Network.CNICacheDir != "" {
		return c.Network.CNICacheDir
	}
	return filepath.Join(c.Root, "cni-cache")
}

// Capabilities returns runtime.default_capabilities in the "CAP_X" form
// used by OCI runtime specs.
func (r *RuntimeConfig) Capabilities() []string {
	out := make([]string, 0, len(r.DefaultCapabilities))
	for _, c := range r.DefaultCapabilities {
		c = strings.ToUpper(strings.TrimSpace(c))
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// Sysctls returns runtime.default_sysctls as a map. Later entries win.
func (r *RuntimeConfig) Sysctls() (map[string]string, error) {
	out := make(map[string]string, len(r.DefaultSysctls))
	for _, s := range r.DefaultSysctls {
		name, value, err := ParseSysctl(s)
		if err != nil {
			return nil, err
		}
		out[name] = value
	}
	return out, nil
}

// Ulimits returns runtime.default_ulimits parsed.
func (r *RuntimeConfig) Ulimits() ([]Ulimit, error) {
	out := make([]Ulimit, 0, len(r.DefaultUlimits))
	for _, s := range r.DefaultUlimits {
		u, err := ParseUlimit(s)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}
