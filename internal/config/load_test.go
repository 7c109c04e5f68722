package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "cradle.toml")

	// Missing default path: defaults.
	got, err := Load(missing, filepath.Join(t.TempDir(), "no-such-dir"))
	if err != nil {
		t.Fatalf("Load(missing default) = %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("Load(missing default) = %+v, want defaults", got)
	}

	// Missing explicit path: error naming it.
	_, err = Load(missing, "", RequireFile())
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Load(missing, RequireFile) = %v, want not-exist error naming %s", err, missing)
	}
}

func TestLoadDropins(t *testing.T) {
	dir := t.TempDir()
	main := writeFile(t, dir, "cradle.toml", `
log_level = "debug"
[runtime]
conmon = "/main/conmon"
`)
	dropins := filepath.Join(dir, "cradle.d")
	if err := os.MkdirAll(filepath.Join(dropins, "30-dir.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Written out of order to show that names, not creation, decide.
	writeFile(t, dropins, "10-b.toml", `
[runtime]
conmon = "/b/conmon"
[runtime.handlers.kata]
type = "vm"
path = "/usr/bin/kata"
[network]
cni_plugin_dirs = ["/x"]
`)
	writeFile(t, dropins, "00-a.toml", `
[runtime]
conmon = "/a/conmon"
pids_limit = 100
default_handler = "kata"   # defined only by the later drop-in
[runtime.handlers.runc]
path = "/a/runc"
`)
	writeFile(t, dropins, "20-ignored.conf", "not toml at all [")
	writeFile(t, dropins, ".99-hidden.toml", "not toml at all [")

	got, err := Load(main, dropins, RequireFile())
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.LogLevel = LogLevelDebug
	want.Runtime.Conmon = "/b/conmon"
	want.Runtime.PidsLimit = 100
	want.Runtime.DefaultHandler = "kata"
	runc := want.Runtime.Handlers["runc"]
	runc.Path = "/a/runc" // type and annotations kept
	want.Runtime.Handlers["runc"] = runc
	want.Runtime.Handlers["kata"] = Handler{Type: HandlerTypeVM, Path: "/usr/bin/kata"}
	want.Network.CNIPluginDirs = []string{"/x"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merged config:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		line      int
		key       string
	}{
		{"table key", "# cradle\n\nlisten = \"unix:///run/cradle/cradle.sock\"\n\n[runtime]\nconmon = \"/usr/bin/conmon\"\nconmonn = \"/x\"\n", 7, "runtime.conmonn"},
		{"top level", "log_level = \"info\"\nlisten_addr = \"x\"\n", 2, "listen_addr"},
		{"dotted", "log_level = \"info\"\n\nruntime.conmonn = \"/x\"\n", 3, "runtime.conmonn"},
		{"unknown table reported once", "[foo]\nbar = 1\n", 1, "foo"},
		{"handler key", "[runtime.handlers.runc]\ntype = \"oci\"\npathh = \"/x\"\n", 3, "runtime.handlers.runc.pathh"},
		{"wrong case", "LOG_LEVEL = \"debug\"\n", 1, "LOG_LEVEL"},
		{"inline table", "[runtime]\n\nhandlers = { runc = { pathh = \"/x\" } }\n", 3, "runtime.handlers.runc.pathh"},
		{"after multi-line array", "[runtime]\ndefault_ulimits = [\n  \"nofile=1024:2048\", # x = 1\n]\nconmonn = \"/x\"\n", 5, "runtime.conmonn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "cradle.toml", tc.doc)
			_, err := Load(path, "")
			want := fmt.Sprintf("%s:%d: unknown key %q", path, tc.line, tc.key)
			if err == nil || err.Error() != want {
				t.Fatalf("Load = %v\nwant %s", err, want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Key != tc.key || ce.File != path || ce.Line != tc.line {
				t.Fatalf("error fields = %+v", ce)
			}
		})
	}
}

func TestLoadUnknownKeyInDropin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "00-ok.toml", "[runtime]\nconmon = \"/c\"\n")
	bad := writeFile(t, dir, "10-bad.toml", "[image]\n\npause_imagee = \"x\"\n")
	_, err := Load("", dir)
	if err == nil || !strings.HasPrefix(err.Error(), bad+":3: unknown key ") {
		t.Fatalf("Load = %v, want unknown key in %s:3", err, bad)
	}
}

func TestLoadParseError(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		line int
	}{
		{"log_level = \"info\"\n[runtime\nconmon = \"x\"\n", 2}, // error at the newline
		{"log_level = \"info\"\nlog_level = \"debug\"\n", 2},    // duplicate key
		{"\n\nlisten = \n", 3},
		{"[runtime", 1},
	} {
		path := writeFile(t, t.TempDir(), "cradle.toml", tc.doc)
		_, err := Load(path, "")
		prefix := fmt.Sprintf("%s:%d: invalid TOML: ", path, tc.line)
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Load(%q) = %v, want prefix %s", tc.doc, err, prefix)
		}
	}
}

func TestLoadInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		line      int    // 0: the error has no line
		key       string // key named by the error
		msg       string // further text the message contains
	}{
		{"log_level", "\nlog_level = \"verbose\"\n", 2, "log_level", `invalid value "verbose"`},
		{"log_level type", "log_level = 5\n", 1, "log_level", "want a string, got an integer"},
		{"log_format", "log_format = \"xml\"\n", 1, "log_format", `"text", "json"`},
		{"listen scheme", "listen = \"tcp://0.0.0.0:10010\"\n", 1, "listen", "only unix sockets"},
		{"listen relative", "listen = \"unix://cradle.sock\"\n", 1, "listen", "must be absolute"},
		{"root relative", "root = \"var/lib/cradle\"\n", 1, "root", "must be absolute"},
		{"runroot relative", "runroot = \"run\"\n", 1, "runroot", "must be absolute"},
		{"cgroup_driver", "[runtime]\ncgroup_driver = \"systemdd\"\n", 2, "runtime.cgroup_driver", `invalid value "systemdd"`},
		{"infra_container", "[runtime]\ninfra_container = \"never\"\n", 2, "runtime.infra_container", `"auto", "always"`},
		{"default_handler", "[runtime]\ndefault_handler = \"crun\"\n", 2, "runtime.default_handler", `handler "crun" is not defined`},
		{"handler type", "[runtime.handlers.kata]\ntype = \"docker\"\npath = \"/k\"\n", 2, "runtime.handlers.kata.type", `invalid value "docker"`},
		{"handler type missing", "\n[runtime.handlers.kata]\npath = \"/k\"\n", 2, "runtime.handlers.kata.type", `invalid value ""`},
		{"handler infra", "[runtime.handlers.runc]\ninfra_container = \"sometimes\"\n", 2, "runtime.handlers.runc.infra_container", `invalid value "sometimes"`},
		{"handler root", "[runtime.handlers.runc]\nroot = \"state\"\n", 2, "runtime.handlers.runc.root", "must be absolute"},
		{"vm path not inherited from an oci default", "[runtime.handlers.shim]\ntype = \"vm\"\n", 1, "runtime.handlers.shim.path", "same type"},
		{"runtime_path on oci", "[runtime.handlers.runc]\nruntime_path = \"/usr/sbin/runc\"\n", 2, "runtime.handlers.runc.runtime_path", "vm handlers only"},
		{"vm infra auto", "[runtime.handlers.shim]\ntype = \"vm\"\npath = \"/s\"\ninfra_container = \"auto\"\n", 4, "runtime.handlers.shim.infra_container", "first task"},
		{"vm root without runtime_path", "[runtime.handlers.shim]\ntype = \"vm\"\npath = \"/s\"\nroot = \"/run/x\"\n", 4, "runtime.handlers.shim.root", "needs runtime_path"},
		{"runtime_args on vm", "[runtime.handlers.shim]\ntype = \"vm\"\npath = \"/s\"\nruntime_args = [\"--debug\"]\n", 4, "runtime.handlers.shim.runtime_args", "oci handlers only"},
		{"runtime_args not a flag", "[runtime.handlers.runc]\nruntime_args = [\"debug\"]\n", 2, "runtime.handlers.runc.runtime_args", "not a flag"},
		{"monitor_env", "[runtime.handlers.runc]\nmonitor_env = [\"NOEQUALS\"]\n", 2, "runtime.handlers.runc.monitor_env", "not KEY=value"},
		{"monitor_cgroup relative", "[runtime.handlers.runc]\nmonitor_cgroup = \"mon\"\n", 2, "runtime.handlers.runc.monitor_cgroup", "clean absolute"},
		{"monitor_cgroup dotdot", "[runtime.handlers.runc]\nmonitor_cgroup = \"/a/../b\"\n", 2, "runtime.handlers.runc.monitor_cgroup", "clean absolute"},
		{"monitor_cgroup root", "[runtime.handlers.runc]\nmonitor_cgroup = \"/\"\n", 2, "runtime.handlers.runc.monitor_cgroup", "below the root"},
		{"monitor_cgroup systemd", "[runtime]\ncgroup_driver = \"systemd\"\n[runtime.handlers.runc]\nmonitor_cgroup = \"/mon\"\n", 4, "runtime.handlers.runc.monitor_cgroup", "cgroupfs driver only"},
		{"ulimit", "[runtime]\ndefault_ulimits = [\"nofile=2048:1024\"]\n", 2, "runtime.default_ulimits", "soft limit exceeds hard"},
		{"sysctl", "[runtime]\ndefault_sysctls = [\"novalue\"]\n", 2, "runtime.default_sysctls", "want name=value"},
		{"pinned_images", "[image]\npinned_images = [\"\"]\n", 2, "image.pinned_images", "invalid pattern"},
		{"streaming key without cert", "[streaming]\ntls_key_file = \"/k.pem\"\n", 2, "streaming.tls_key_file", "needs tls_cert_file"},
		{"streaming idle_timeout", "[streaming]\nidle_timeout = \"0s\"\n", 2, "streaming.idle_timeout", "not positive"},
		{"cdi_spec_dirs", "[runtime]\ncdi_spec_dirs = [\"etc/cdi\"]\n", 2, "runtime.cdi_spec_dirs", "must be absolute"},
		{"sysctl global", "[runtime]\ndefault_sysctls = [\"kernel.panic=1\"]\n", 2, "runtime.default_sysctls", "is not namespaced"},
		{"pids_limit", "[runtime]\npids_limit = -2\n", 2, "runtime.pids_limit", "-2 is invalid"},
		{"log_size_max", "[runtime]\nlog_size_max = 0\n", 2, "runtime.log_size_max", "0 is invalid"},
		{"duration", "[image]\npull_progress_timeout = \"5 minutes\"\n", 2, "image.pull_progress_timeout", `invalid duration "5 minutes"`},
		{"duration type", "[image]\npull_progress_timeout = 60\n", 2, "image.pull_progress_timeout", "want a string"},
		{"negative duration", "[image]\npull_progress_timeout = \"-1s\"\n", 2, "image.pull_progress_timeout", "negative"},
		{"storage_driver", "[image]\nstorage_driver = \"btrfs\"\n", 2, "image.storage_driver", `invalid value "btrfs"`},
		{"streaming", "[streaming]\naddress = \"localhost\"\n", 2, "streaming.address", "not host:port"},
		{"cni_cache_dir", "[network]\ncni_cache_dir = \"cache\"\n", 2, "network.cni_cache_dir", "must be absolute"},
		{"array type", "[network]\ncni_plugin_dirs = \"/opt/cni/bin\"\n", 2, "network.cni_plugin_dirs", "want an array, got a string"},
		{"nri socket_path", "[nri]\nsocket_path = \"nri.sock\"\n", 2, "nri.socket_path", "must be absolute"},
		{"nri plugin_path", "[nri]\nplugin_path = \"\"\n", 2, "nri.plugin_path", "must be set"},
		{"nri timeout", "[nri]\nplugin_request_timeout = \"0s\"\n", 2, "nri.plugin_request_timeout", "not positive"},
		{"tracing endpoint", "[tracing]\nendpoint = \"collector\"\n", 2, "tracing.endpoint", "not host:port"},
		{"tracing insecure", "[tracing]\ninsecure = true\n", 2, "tracing.insecure", "needs tracing.endpoint"},
		{"tracing sampling", "[tracing]\nsampling_rate_per_million = 1000001\n", 2, "tracing.sampling_rate_per_million", "not between 0 and 1000000"},
		{"tracing service_name", "[tracing]\nservice_name = \"\"\n", 2, "tracing.service_name", "is empty"},
		{"table type", "runtime = 1\n", 1, "runtime", "want a table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "cradle.toml", tc.doc)
			_, err := Load(path, "")
			if err == nil {
				t.Fatal("Load succeeded")
			}
			prefix := fmt.Sprintf("%s:%d: key %q: ", path, tc.line, tc.key)
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Load = %v\nwant prefix %s and %q", err, prefix, tc.msg)
			}
		})
	}
}

// Validation runs on the merged result and blames the file that last set
// the key.
func TestLoadInvalidValueBlamesLastFile(t *testing.T) {
	dir := t.TempDir()
	main := writeFile(t, dir, "cradle.toml", "log_level = \"debug\"\nlog_format = \"yaml\"\n")
	drop := filepath.Join(dir, "d")
	if err := os.Mkdir(drop, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := writeFile(t, drop, "50-level.toml", "# override\nlog_level = \"loud\"\n")
	_, err := Load(main, drop)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, want := range []string{
		bad + `:2: key "log_level": invalid value "loud"`,
		main + `:2: key "log_format": invalid value "yaml"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load error %q lacks %q", err, want)
		}
	}
}

func TestValidateAfterOverride(t *testing.T) {
	c := Default()
	c.LogLevel = "loud"
	c.Runtime.DefaultHandler = "kata"
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	for _, want := range []string{
		`key "log_level": invalid value "loud"`,
		`key "runtime.default_handler": handler "kata" is not defined in [runtime.handlers] (defined: runc)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %q, lacks %q", err, want)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.File != "" {
		t.Errorf("errors.As(*Error) = %+v", ce)
	}
}
