package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in TOML as a Go duration string
// ("90s", "1m30s"), which reads better than nanoseconds.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration but drops zero trailing units, so
// one minute prints as "1m" rather than "1m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want a Go duration such as \"90s\" or \"1m\")", b)
	}
	*d = Duration(v)
	return nil
}

// Unlimited is the rlimit value meaning "no limit" (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// rlimitNames are the resource names accepted in default_ulimits (the Linux
// RLIMIT_* names, lower case and without the prefix).
var rlimitNames = map[string]bool{
	"as": true, "core": true, "cpu": true, "data": true, "fsize": true,
	"locks": true, "memlock": true, "msgqueue": true, "nice": true,
	"nofile": true, "nproc": true, "rss": true, "rtprio": true,
	"rttime": true, "sigpending": true, "stack": true,
}

// Ulimit is one parsed default_ulimits entry.
type Ulimit struct {
	Name string // lower case, e.g. "nofile"
	Soft uint64
	Hard uint64
}

// Type returns the OCI runtime spec name, e.g. "RLIMIT_NOFILE".
func (u Ulimit) Type() string { return "RLIMIT_" + strings.ToUpper(u.Name) }

// ParseUlimit parses "name=soft:hard" or "name=value" (soft = hard = value).
// Limits are non-negative integers, or -1 / "unlimited" for no limit.
func ParseUlimit(s string) (Ulimit, error) {
	name, limits, ok := strings.Cut(s, "=")
	name = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(name), "RLIMIT_"))
	if !ok || !rlimitNames[name] {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: want name=soft:hard with a known rlimit name such as nofile", s)
	}
	softStr, hardStr, pair := strings.Cut(limits, ":")
	if !pair {
		hardStr = softStr
	}
	soft, err1 := parseRlimit(softStr)
	hard, err2 := parseRlimit(hardStr)
	if err1 != nil || err2 != nil {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: limits must be non-negative integers, -1 or \"unlimited\"", s)
	}
	if soft > hard {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: soft limit exceeds hard limit", s)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

func parseRlimit(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "-1" || s == "unlimited" {
		return Unlimited, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// ParseSysctl splits a default_sysctls entry "name=value".
func ParseSysctl(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return "", "", fmt.Errorf("invalid sysctl %q: want name=value", s)
	}
	return name, strings.TrimSpace(value), nil
}
