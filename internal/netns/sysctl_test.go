package netns

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateSysctls(t *testing.T) {
	cases := []struct {
		name             string
		sysctl           string
		hostNet, hostIPC bool
		want             error // nil: valid
		invalid          bool  // malformed name
	}{
		{name: "net", sysctl: "net.ipv4.ip_forward"},
		{name: "net slashes", sysctl: "net/ipv4/ip_forward"},
		{name: "net vlan iface slashes", sysctl: "net/ipv4/conf/eth0.100/rp_filter"},
		{name: "net vlan iface dots", sysctl: "net.ipv4.conf.eth0/100.rp_filter"},
		{name: "net host", sysctl: "net.ipv4.ip_forward", hostNet: true, want: ErrHostNamespace},
		{name: "net slashes host", sysctl: "net/core/somaxconn", hostNet: true, want: ErrHostNamespace},
		{name: "shmmax", sysctl: "kernel.shmmax"},
		{name: "sem", sysctl: "kernel.sem"},
		{name: "shm_rmid_forced host ipc", sysctl: "kernel.shm_rmid_forced", hostIPC: true, want: ErrHostNamespace},
		{name: "msgmnb host net ok", sysctl: "kernel.msgmnb", hostNet: true},
		{name: "mqueue", sysctl: "fs.mqueue.msg_max"},
		{name: "mqueue slashes host ipc", sysctl: "fs/mqueue/queues_max", hostIPC: true, want: ErrHostNamespace},
		{name: "domainname", sysctl: "kernel.domainname"},
		{name: "hostname", sysctl: "kernel.hostname"},
		{name: "hostname host net", sysctl: "kernel.hostname", hostNet: true, want: ErrHostNamespace},
		{name: "domainname host ipc ok", sysctl: "kernel.domainname", hostIPC: true},
		{name: "swappiness", sysctl: "vm.swappiness", want: ErrNotNamespaced},
		{name: "panic", sysctl: "kernel.panic", want: ErrNotNamespaced},
		{name: "shm prefix only", sysctl: "kernel.shm_next_id", want: ErrNotNamespaced},
		{name: "mqueue dir itself", sysctl: "fs.mqueue", want: ErrNotNamespaced},
		{name: "bare net", sysctl: "net", want: ErrNotNamespaced},
		{name: "escape", sysctl: "net.ipv4.//.//.//.vm.swappiness", invalid: true},
		{name: "escape slashes", sysctl: "net/../../etc/passwd", invalid: true},
		{name: "empty component", sysctl: "net..ipv4", invalid: true},
		{name: "trailing dot", sysctl: "net.ipv4.", invalid: true},
		{name: "empty", sysctl: "", invalid: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := ValidateSysctls(map[string]string{c.sysctl: "1"}, c.hostNet, c.hostIPC)
			switch {
			case c.invalid:
				if err == nil || !strings.Contains(err.Error(), "invalid name") {
					t.Fatalf("got %v, want an invalid-name error", err)
				}
			case c.want == nil:
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
			default:
				if !errors.Is(err, c.want) {
					t.Fatalf("got %v, want %v", err, c.want)
				}
			}
			if err != nil && !strings.Contains(err.Error(), `"`+c.sysctl+`"`) {
				t.Errorf("error %q does not name the sysctl", err)
			}
		})
	}
}

func TestValidateSysctlsMessages(t *testing.T) {
	err := ValidateSysctls(map[string]string{"vm.swappiness": "1"}, false, false)
	if err == nil || err.Error() != `sysctl "vm.swappiness" is not namespaced` {
		t.Errorf("got %v", err)
	}
	err = ValidateSysctls(map[string]string{"net.ipv4.ip_forward": "1"}, true, false)
	if err == nil || !strings.Contains(err.Error(), "would affect the host") {
		t.Errorf("got %v", err)
	}
	// All problems are reported, in a stable order.
	err = ValidateSysctls(map[string]string{"vm.swappiness": "1", "kernel.panic": "1", "net.core.somaxconn": "1"}, false, false)
	if err == nil || err.Error() != "sysctl \"kernel.panic\" is not namespaced\nsysctl \"vm.swappiness\" is not namespaced" {
		t.Errorf("got %q", err)
	}
	if err := ValidateSysctls(nil, true, true); err != nil {
		t.Errorf("no sysctls: %v", err)
	}
}

func TestParseSysctlPath(t *testing.T) {
	for in, want := range map[string]string{
		"net.ipv4.ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/ip_forward":              "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/rp_filter": "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"net.ipv4.conf.eth0/100.rp_filter": "/proc/sys/net/ipv4/conf/eth0.100/rp_filter",
		"kernel.shmmax":                    "/proc/sys/kernel/shmmax",
	} {
		s, err := parseSysctl(in, "")
		if err != nil || s.path != want {
			t.Errorf("parseSysctl(%q) = %q, %v; want %q", in, s.path, err, want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	defaults := map[string]string{
		"net.ipv4.ping_group_range": "0 0", "net/core/somaxconn": "512",
		"kernel.shmmni": "100", "kernel.domainname": "d", "vm.swappiness": "1",
	}
	cases := []struct {
		name             string
		pod              map[string]string
		hostNet, hostIPC bool
		want             map[string]string
	}{
		{name: "defaults only", want: map[string]string{
			"net.ipv4.ping_group_range": "0 0", "net/core/somaxconn": "512", "kernel.shmmni": "100", "kernel.domainname": "d"}},
		{name: "pod wins, other spelling", pod: map[string]string{"net/ipv4/ping_group_range": "1 1", "net.core.somaxconn": "9"},
			want: map[string]string{"net/ipv4/ping_group_range": "1 1", "net.core.somaxconn": "9", "kernel.shmmni": "100", "kernel.domainname": "d"}},
		{name: "host network drops net and uts", hostNet: true, want: map[string]string{"kernel.shmmni": "100"}},
		{name: "host ipc drops ipc", hostIPC: true, pod: map[string]string{"kernel.sem": "1 2 3 4"},
			want: map[string]string{"net.ipv4.ping_group_range": "0 0", "net/core/somaxconn": "512", "kernel.domainname": "d", "kernel.sem": "1 2 3 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := WithDefaults(defaults, c.pod, c.hostNet, c.hostIPC)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
	if got := WithDefaults(nil, map[string]string{"a": "b"}, false, false); got["a"] != "b" || len(got) != 1 {
		t.Errorf("no defaults: %v", got)
	}
	for name, ok := range map[string]bool{"net.ipv4.ip_forward": true, "kernel.msgmax": true, "vm.swappiness": false, "net/../x": false} {
		if err := CheckNamespaced(name); (err == nil) != ok {
			t.Errorf("CheckNamespaced(%q) = %v", name, err)
		}
	}
}
