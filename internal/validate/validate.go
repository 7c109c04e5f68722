// Package validate checks CRI requests before the runtime allocates
// anything for them: every refusal is an *Error naming the request field,
// so a bad request never gets half way and fails deep in runc or a CNI
// plugin with an unnamed error. It is pure: no I/O, no daemon state.
package validate

import (
	"fmt"
	"strings"
	"unicode"
)

// Error is a refused field: Field is its path in the request, as the CRI's
// protobuf names it ("config.linux.resources.cpu_quota").
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func errf(field, format string, a ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Limits from the kernel and from Kubernetes' own API validation.
const (
	// MaxHostname is the kubelet's (a DNS label); the kernel's is 64.
	MaxHostname = 63
	// MaxNameservers is glibc's MAXNS, which the kubelet enforces too.
	MaxNameservers = 3
	// MaxSearches and MaxSearchChars are the kubelet's resolv.conf limits.
	MaxSearches    = 32
	MaxSearchChars = 2048
	// MaxMetaSize bounds the labels, and the annotations, of one object:
	// Kubernetes' TotalAnnotationSizeLimitB.
	MaxMetaSize = 256 << 10
	// MaxMetaKey is a qualified name: a 253-byte prefix, '/', 63 bytes.
	MaxMetaKey = 317
	// MaxName bounds metadata names (a DNS subdomain's length).
	MaxName = 253
	// ArgMax is execve's limit on argv plus envp with the default 8 MiB
	// stack (a quarter of it), and MaxArgStrlen the kernel's limit on one
	// string (MAX_ARG_STRLEN, 32 pages).
	ArgMax       = 2 << 20
	MaxArgStrlen = 32 * 4096
)

// name checks a metadata name: something the runtime shows, logs and
// builds names from, so no path separators, NUL or control characters.
func name(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return errf(field, "is empty")
	case len(v) > MaxName:
		return errf(field, "is %d bytes long; the limit is %d", len(v), MaxName)
	case v == "." || v == "..":
		return errf(field, "%q is not a valid name", v)
	case strings.ContainsAny(v, "/\\"):
		return errf(field, "%q has a path separator", v)
	}
	return printable(field, v)
}

// printable refuses NUL and control characters, which would cut a string
// short for the kernel or inject lines into the files the runtime writes.
func printable(field, v string) error {
	for i, r := range v {
		if r == 0 || unicode.IsControl(r) {
			return errf(field, "has a control character (%U) at byte %d", r, i)
		}
	}
	return nil
}

// noNUL refuses NUL only: argv and env may hold tabs and newlines, but the
// kernel ends a string at NUL.
func noNUL(field, v string) error {
	if i := strings.IndexByte(v, 0); i >= 0 {
		return errf(field, "has a NUL byte at %d", i)
	}
	return nil
}

// absPath checks a host or container path that must be absolute and may
// not climb with "..": runtimes resolve it as given, so ".." would point
// somewhere the caller did not name.
func absPath(field, p string) error {
	switch {
	case p == "":
		return errf(field, "is empty")
	case !strings.HasPrefix(p, "/"):
		return errf(field, "%q is not an absolute path", p)
	case hasDotDot(p):
		return errf(field, "%q has a \"..\" segment", p)
	}
	return noNUL(field, p)
}

func hasDotDot(p string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}

// labels checks an object's labels and annotations.
func labels(l, a map[string]string) error {
	if err := meta("config.labels", l); err != nil {
		return err
	}
	return meta("config.annotations", a)
}

// meta checks a label or annotation map against Kubernetes' limits.
func meta(field string, m map[string]string) error {
	total := 0
	for k, v := range m {
		switch {
		case k == "":
			return errf(field, "has an empty key")
		case len(k) > MaxMetaKey:
			return errf(field+"["+k[:32]+"...]", "key is %d bytes long; the limit is %d", len(k), MaxMetaKey)
		}
		if err := printable(field+"["+k+"]", k); err != nil {
			return err
		}
		if err := noNUL(field+"["+k+"]", v); err != nil {
			return err
		}
		total += len(k) + len(v)
	}
	if total > MaxMetaSize {
		return errf(field, "total size is %d bytes; the limit is %d", total, MaxMetaSize)
	}
	return nil
}
