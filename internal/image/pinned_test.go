package image

import "testing"

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"a", "a", true},
		{"a", "ab", false},
		{"*", "", true},
		{"*", "x/y:z", true},
		{"reg.io/*", "reg.io/a/b:1", true},
		{"reg.io/*", "other.io/reg.io/a", false},
		{"*pause*", "registry.k8s.io/pause:3.10", true},
		{"*pause*", "registry.k8s.io/busybox:1", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"a*a", "a", false}, // prefix and suffix may not overlap
		{"a*a", "aa", true},
		{"*:1.36", "docker.io/library/busybox:1.36", true},
	}
	for _, c := range cases {
		if got := globMatch(c.p, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.p, c.s, got, c.want)
		}
	}
}

func TestPinned(t *testing.T) {
	names := []string{"docker.io/library/busybox:1.36", "docker.io/library/busybox@sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	for _, c := range []struct {
		patterns []string
		want     bool
	}{
		{nil, false},
		{[]string{"busybox:1.36"}, true}, // familiar form
		{[]string{"docker.io/library/busybox:1.36"}, true},       // full form
		{[]string{"busybox"}, false},                             // a name, not a tag: exact means exact
		{[]string{"docker.io/library/*"}, true},                  // prefix
		{[]string{"quay.io/*", "*busy*"}, true},                  // keyword, second pattern
		{[]string{"busybox@sha256:0123*"}, true},                 // by digest
		{[]string{"quay.io/*", "registry.k8s.io/pause*"}, false}, // none
	} {
		if got := pinned(c.patterns, names); got != c.want {
			t.Errorf("pinned(%q) = %v, want %v", c.patterns, got, c.want)
		}
	}
}
