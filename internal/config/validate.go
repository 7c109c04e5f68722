package config

import (
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/cradle-runtime/cradle/internal/netns"
)

// Validate reports every invalid value in c. Call it again after command
// line flags override fields; Load already calls it.
func (c *Config) Validate() error {
	if errs := c.check(); len(errs) > 0 {
		return joinErrors(errs, nil)
	}
	return nil
}

// check returns one keyError per invalid value, in a stable order.
func (c *Config) check() []keyError {
	v := &validator{}
	if path, ok := strings.CutPrefix(c.Listen, "unix://"); !ok {
		v.bad(toml.Key{"listen"}, "%q is not a unix:// address; only unix sockets are supported", c.Listen)
	} else if !filepath.IsAbs(path) {
		v.bad(toml.Key{"listen"}, "socket path %q must be absolute", path)
	}
	v.absPath(toml.Key{"root"}, c.Root, true)
	v.absPath(toml.Key{"runroot"}, c.RunRoot, true)
	v.oneOf(toml.Key{"log_level"}, c.LogLevel, LogLevelDebug, LogLevelInfo, LogLevelWarn, LogLevelError)
	v.oneOf(toml.Key{"log_format"}, c.LogFormat, LogFormatText, LogFormatJSON)

	r := &c.Runtime
	rk := func(k ...string) toml.Key { return append(toml.Key{"runtime"}, k...) }
	if r.DefaultHandler == "" {
		v.bad(rk("default_handler"), "must name a handler")
	} else if _, ok := r.Handlers[r.DefaultHandler]; !ok {
		v.bad(rk("default_handler"), "handler %q is not defined in [runtime.handlers] (defined: %s)",
			r.DefaultHandler, strings.Join(c.HandlerNames(), ", "))
	}
	v.oneOf(rk("cgroup_driver"), r.CgroupDriver, CgroupDriverCgroupfs, CgroupDriverSystemd)
	for _, cp := range r.DefaultCapabilities {
		if strings.TrimSpace(cp) == "" {
			v.bad(rk("default_capabilities"), "empty capability name")
		}
	}
	for _, s := range r.DefaultSysctls {
		if name, _, err := ParseSysctl(s); err != nil {
			v.bad(rk("default_sysctls"), "%v", err)
		} else if err := netns.CheckNamespaced(name); err != nil {
			// A global one would fail every pod, or change the host.
			v.bad(rk("default_sysctls"), "%v", err)
		}
	}
	for _, s := range r.DefaultUlimits {
		if _, err := ParseUlimit(s); err != nil {
			v.bad(rk("default_ulimits"), "%v", err)
		}
	}
	for _, d := range r.CDISpecDirs {
		v.absPath(rk("cdi_spec_dirs"), d, true)
	}
	if r.PidsLimit < -1 {
		v.bad(rk("pids_limit"), "%d is invalid (want -1 or 0 for no limit, or a positive count)", r.PidsLimit)
	}
	if r.LogSizeMax == 0 || r.LogSizeMax < -1 {
		v.bad(rk("log_size_max"), "%d is invalid (want -1 for unlimited or a positive number of bytes)", r.LogSizeMax)
	}
	v.oneOf(rk("infra_container"), r.InfraContainer, InfraAuto, InfraAlways)
	v.absPath(rk("seccomp_profile"), r.SeccompProfile, false)
	for _, name := range c.HandlerNames() {
		h := r.Handlers[name]
		hk := func(k string) toml.Key { return rk("handlers", name, k) }
		if name == "" {
			v.bad(rk("handlers", name), "handler name must not be empty")
		}
		v.oneOf(hk("type"), h.Type, HandlerTypeOCI, HandlerTypeVM)
		if eff, _ := c.Handler(name); eff.Path == "" {
			v.bad(hk("path"), "must name the runtime binary (or inherit the default handler's, of the same type)")
		}
		v.absPath(hk("root"), h.Root, false)
		if h.Type == HandlerTypeVM && h.RuntimePath == "" && h.Root != "" {
			v.bad(hk("root"), "a vm handler's root is its runc shim's state root; it needs runtime_path (Kata and gVisor keep their own)")
		}
		if len(h.RuntimeArgs) > 0 && h.Type != HandlerTypeOCI {
			v.bad(hk("runtime_args"), "applies to oci handlers only: a shim runs its runtime itself")
		}
		for _, a := range h.RuntimeArgs {
			if !strings.HasPrefix(a, "-") {
				v.bad(hk("runtime_args"), "%q is not a flag: global arguments come before the subcommand", a)
			}
		}
		if h.RuntimePath != "" && h.Type != HandlerTypeVM {
			v.bad(hk("runtime_path"), "applies to vm handlers only; an oci handler's runtime is its path")
		}
		if h.Type == HandlerTypeVM && h.InfraContainer == InfraAuto {
			v.bad(hk("infra_container"), "a vm handler always runs the pod sandbox as its first task; leave it empty or set always")
		}
		for _, kv := range h.MonitorEnv {
			if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
				v.bad(hk("monitor_env"), "%q is not KEY=value", kv)
			}
		}
		switch mc := h.MonitorCgroup; {
		case mc == "":
		case r.CgroupDriver == CgroupDriverSystemd:
			v.bad(hk("monitor_cgroup"), "applies to the cgroupfs driver only")
		case !filepath.IsAbs(mc) || filepath.Clean(mc) != mc || mc == "/":
			v.bad(hk("monitor_cgroup"), "%q must be a clean absolute cgroupfs path below the root", mc)
		}
		v.oneOf(hk("infra_container"), h.InfraContainer, "", InfraAuto, InfraAlways)
		if slices.Contains(h.AllowedAnnotations, "") {
			v.bad(hk("allowed_annotations"), "empty annotation name")
		}
	}

	n := &c.Network
	v.absPath(toml.Key{"network", "cni_conf_dir"}, n.CNIConfDir, false)
	for _, d := range n.CNIPluginDirs {
		v.absPath(toml.Key{"network", "cni_plugin_dirs"}, d, true)
	}
	v.absPath(toml.Key{"network", "cni_cache_dir"}, n.CNICacheDir, false)

	im := &c.Image
	if im.PauseImage == "" {
		v.bad(toml.Key{"image", "pause_image"}, "must name an image")
	}
	v.oneOf(toml.Key{"image", "storage_driver"}, im.StorageDriver, "", StorageDriverOverlay, StorageDriverVFS)
	if im.PullProgressTimeout < 0 {
		v.bad(toml.Key{"image", "pull_progress_timeout"}, "%s is negative", im.PullProgressTimeout)
	}
	for _, p := range im.PinnedImages {
		if strings.TrimSpace(p) == "" || strings.ContainsAny(p, " \t\n") {
			v.bad(toml.Key{"image", "pinned_images"}, "invalid pattern %q: want an image name, \"*\" for any characters", p)
		}
	}

	if c.NRI.Enable {
		v.absPath(toml.Key{"nri", "socket_path"}, c.NRI.SocketPath, true)
		v.absPath(toml.Key{"nri", "plugin_path"}, c.NRI.PluginPath, true)
		v.absPath(toml.Key{"nri", "plugin_config_path"}, c.NRI.PluginConfigPath, true)
		if c.NRI.RegistrationTimeout <= 0 {
			v.bad(toml.Key{"nri", "plugin_registration_timeout"}, "%s is not positive", c.NRI.RegistrationTimeout)
		}
		if c.NRI.RequestTimeout <= 0 {
			v.bad(toml.Key{"nri", "plugin_request_timeout"}, "%s is not positive", c.NRI.RequestTimeout)
		}
	}

	if c.Stats.CollectionPeriod.Std() < time.Second {
		v.bad(toml.Key{"stats", "collection_period"}, "%s is shorter than 1s", c.Stats.CollectionPeriod)
	}
	if c.Metrics.Address != "" {
		v.hostPort(toml.Key{"metrics", "address"}, c.Metrics.Address)
	} else if c.Metrics.Pprof {
		v.bad(toml.Key{"metrics", "pprof"}, "needs metrics.address: pprof is served on the metrics endpoint")
	}
	if c.Tracing.Endpoint != "" {
		v.hostPort(toml.Key{"tracing", "endpoint"}, c.Tracing.Endpoint)
	} else if c.Tracing.Insecure {
		v.bad(toml.Key{"tracing", "insecure"}, "needs tracing.endpoint: it says how spans reach the collector")
	}
	if r := c.Tracing.SamplingRatePerMillion; r < 0 || r > 1_000_000 {
		v.bad(toml.Key{"tracing", "sampling_rate_per_million"}, "%d is not between 0 and 1000000", r)
	}
	if c.Tracing.ServiceName == "" {
		v.bad(toml.Key{"tracing", "service_name"}, "is empty")
	}
	v.hostPort(toml.Key{"streaming", "address"}, c.Streaming.Address)
	st := &c.Streaming
	v.absPath(toml.Key{"streaming", "tls_cert_file"}, st.TLSCertFile, false)
	v.absPath(toml.Key{"streaming", "tls_key_file"}, st.TLSKeyFile, false)
	switch {
	case st.TLSCertFile != "" && st.TLSKeyFile == "":
		v.bad(toml.Key{"streaming", "tls_cert_file"}, "needs tls_key_file as well")
	case st.TLSKeyFile != "" && st.TLSCertFile == "":
		v.bad(toml.Key{"streaming", "tls_key_file"}, "needs tls_cert_file as well")
	}
	if st.IdleTimeout <= 0 {
		v.bad(toml.Key{"streaming", "idle_timeout"}, "%s is not positive", st.IdleTimeout)
	}
	return v.errs
}

type validator struct{ errs []keyError }

// hostPort checks a TCP listen address: host:port, port 0 to 65535.
func (v *validator) hostPort(key toml.Key, addr string) {
	if _, port, err := net.SplitHostPort(addr); err != nil {
		v.bad(key, "%q is not host:port", addr)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		v.bad(key, "invalid port %q in %q", port, addr)
	}
}

func (v *validator) bad(key toml.Key, format string, args ...any) {
	v.errs = append(v.errs, keyErrorf(key, format, args...))
}

func (v *validator) oneOf(key toml.Key, value string, allowed ...string) {
	if slices.Contains(allowed, value) {
		return
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	v.bad(key, "invalid value %q (want one of %s)", value, strings.Join(quoted, ", "))
}

// absPath checks that p is absolute; an empty p is only allowed when the
// key is optional.
func (v *validator) absPath(key toml.Key, p string, required bool) {
	switch {
	case p == "" && required:
		v.bad(key, "must be set to an absolute path")
	case p != "" && !filepath.IsAbs(p):
		v.bad(key, "path %q must be absolute", p)
	}
}
