package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func TestDefaultIsFresh(t *testing.T) {
	a := Default()
	a.Runtime.DefaultCapabilities[0] = "CHANGED"
	a.Runtime.Handlers["runc"] = Handler{}
	if b := Default(); b.Runtime.DefaultCapabilities[0] != "CHOWN" || b.Runtime.Handlers["runc"].Path == "" {
		t.Fatal("Default() shares state between calls")
	}
}

func TestClone(t *testing.T) {
	a := Default()
	b := a.Clone()
	if !reflect.DeepEqual(a, b) {
		t.Fatal("clone differs from original")
	}
	b.Runtime.DefaultCapabilities[0] = "X"
	b.Network.CNIPluginDirs[0] = "/x"
	h := b.Runtime.Handlers["runc"]
	h.AllowedAnnotations = append(h.AllowedAnnotations, "a")
	b.Runtime.Handlers["runc"] = h
	b.Runtime.Handlers["kata"] = Handler{}
	if !reflect.DeepEqual(a, Default()) {
		t.Fatal("modifying the clone changed the original")
	}
}

func TestHelpers(t *testing.T) {
	c := Default()
	c.Runtime.Handlers["kata"] = Handler{Type: HandlerTypeVM, Path: "/k", Root: "/state/kata", InfraContainer: InfraAlways}
	for _, tc := range []struct{ name, got, want string }{
		{"ListenPath", c.ListenPath(), "/run/cradle/cradle.sock"},
		{"HandlerRoot default", c.HandlerRoot("runc"), "/run/cradle/runtime/runc"},
		{"HandlerRoot explicit", c.HandlerRoot("kata"), "/state/kata"},
		{"CNICacheDir default", c.CNICacheDir(), "/var/lib/cradle/cni-cache"},
		{"InfraContainer inherited", c.InfraContainer("runc"), InfraAuto},
		{"InfraContainer override", c.InfraContainer("kata"), InfraAlways},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	c.Network.CNICacheDir = "/cache"
	if got := c.CNICacheDir(); got != "/cache" {
		t.Errorf("CNICacheDir explicit = %q", got)
	}
	if h, ok := c.Handler(""); !ok || h.Path != "/usr/sbin/runc" {
		t.Errorf(`Handler("") = %v, %v; want the default handler`, h, ok)
	}
	if _, ok := c.Handler("nope"); ok {
		t.Error(`Handler("nope") found`)
	}
	if got := c.HandlerNames(); !slices.Equal(got, []string{"kata", "runc"}) {
		t.Errorf("HandlerNames = %v", got)
	}
	c.Runtime.DefaultCapabilities = []string{"chown", "CAP_KILL"}
	if got := c.Runtime.Capabilities(); !slices.Equal(got, []string{"CAP_CHOWN", "CAP_KILL"}) {
		t.Errorf("Capabilities = %v", got)
	}
	c.Runtime.DefaultSysctls = []string{"net.ipv4.ping_group_range=0 2147483647"}
	if got, err := c.Runtime.Sysctls(); err != nil || got["net.ipv4.ping_group_range"] != "0 2147483647" {
		t.Errorf("Sysctls = %v, %v", got, err)
	}
	c.Runtime.DefaultUlimits = []string{"nofile=1024:2048"}
	if got, err := c.Runtime.Ulimits(); err != nil || !reflect.DeepEqual(got, []Ulimit{{"nofile", 1024, 2048}}) {
		t.Errorf("Ulimits = %v, %v", got, err)
	}
}

// A disabled NRI needs no paths: an admin may blank them.
func TestNRIDisabledSkipsPaths(t *testing.T) {
	c := Default()
	c.NRI = NRIConfig{Enable: false}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	c.NRI.Enable = true
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "nri.socket_path") {
		t.Fatalf("Validate = %v, want an nri.socket_path error", err)
	}
}

// A handler without a path runs the default handler's binary when both
// are of one type.
func TestHandlerInheritsDefaultPath(t *testing.T) {
	c := Default()
	c.Runtime.Handlers["plain"] = Handler{Type: HandlerTypeOCI}
	c.Runtime.Handlers["shim"] = Handler{Type: HandlerTypeVM}
	if h, _ := c.Handler("plain"); h.Path != "/usr/sbin/runc" {
		t.Errorf("oci handler without a path: %q, want the default handler's", h.Path)
	}
	if h, _ := c.Handler("shim"); h.Path != "" {
		t.Errorf("vm handler inherited an oci path %q", h.Path)
	}
}
