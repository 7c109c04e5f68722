package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withDropIn writes a config drop-in (merged key by key over the base
// config), for keys of tables the base config already has.
func withDropIn(name, toml string) option {
	return func(d *daemon) {
		dir := filepath.Join(d.dir, "cradle.d")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			d.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(toml), 0o644); err != nil {
			d.t.Fatal(err)
		}
	}
}

// runtime.default_sysctls reach every pod's namespaces; a pod's own
// sysctl of the same name wins.
func TestDefaultSysctls(t *testing.T) {
	d := newDaemon(t, withDropIn("sysctls", `[runtime]
default_sysctls = ["net.ipv4.ping_group_range=0 1000", "net.ipv4.ip_unprivileged_port_start=500", "kernel.shmmni=1234"]
`))
	d.pull(t, busybox)

	podCfg := d.podConfig(t, "sysctl-defaults")
	pod := d.runPod(t, podCfg)
	out := d.runLogged(t, pod, podCfg, "read", "shmmni=",
		"sh", "-c", "echo ping=$(cat /proc/sys/net/ipv4/ping_group_range) port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) shmmni=$(cat /proc/sys/kernel/shmmni)")
	for _, want := range []string{"ping=0 1000", "port=500", "shmmni=1234"} {
		if !strings.Contains(out, want) {
			t.Errorf("defaults: %q lacks %q", out, want)
		}
	}

	own := d.podConfig(t, "sysctl-own")
	own.Linux.Sysctls = map[string]string{"net/ipv4/ip_unprivileged_port_start": "600"}
	pod2 := d.runPod(t, own)
	out = d.runLogged(t, pod2, own, "read", "shmmni=",
		"sh", "-c", "echo ping=$(cat /proc/sys/net/ipv4/ping_group_range) port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) shmmni=$(cat /proc/sys/kernel/shmmni)")
	for _, want := range []string{"ping=0 1000", "port=600", "shmmni=1234"} {
		if !strings.Contains(out, want) {
			t.Errorf("pod's own sysctl: %q lacks %q", out, want)
		}
	}
}
