package image

import (
	"strings"

	"go.podman.io/image/v5/docker/reference"
)

// pinned says whether an image with these names matches a pattern of
// image.pinned_images, or is the pause image. A pattern matches a name in
// full ("docker.io/library/busybox:1.36") or in the familiar form
// ("busybox:1.36"); "*" in a pattern matches any run of characters, "/"
// and ":" included, so "registry.k8s.io/*" pins every image of that
// registry and "*pause*" every name with pause in it (CRI-O's exact,
// prefix and keyword forms are the special cases).
func pinned(patterns []string, names []string) bool {
	for _, n := range names {
		forms := []string{n}
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			forms = append(forms, reference.FamiliarString(named))
		}
		for _, p := range patterns {
			for _, f := range forms {
				if globMatch(p, f) {
					return true
				}
			}
		}
	}
	return false
}

// globMatch matches s against p, where "*" is any run of characters and
// everything else is literal.
func globMatch(p, s string) bool {
	parts := strings.Split(p, "*")
	if len(parts) == 1 {
		return p == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}
