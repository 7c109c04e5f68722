package config

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{time.Minute, "1m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{90 * time.Second, "1m30s"},
		{1500 * time.Millisecond, "1.5s"},
		{time.Hour + time.Second, "1h0m1s"},
	} {
		if got := Duration(tc.d).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(tc.want)); err != nil || back.Std() != tc.d {
			t.Errorf("UnmarshalText(%q) = %v, %v", tc.want, back, err)
		}
	}
	var d Duration
	if err := d.UnmarshalText([]byte("5 minutes")); err == nil {
		t.Error("UnmarshalText accepted a bad duration")
	}
}

func TestParseUlimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Ulimit
		wantErr bool
	}{
		{in: "nofile=1024:2048", want: Ulimit{"nofile", 1024, 2048}},
		{in: "nproc=512", want: Ulimit{"nproc", 512, 512}},
		{in: "core=-1", want: Ulimit{"core", Unlimited, Unlimited}},
		{in: "memlock=64:unlimited", want: Ulimit{"memlock", 64, Unlimited}},
		{in: "RLIMIT_NOFILE=1:2", want: Ulimit{"nofile", 1, 2}},
		{in: "nofile", wantErr: true},
		{in: "bogus=1", wantErr: true},
		{in: "nofile=2048:1024", wantErr: true},
		{in: "nofile=a:b", wantErr: true},
		{in: "nofile=-5", wantErr: true},
	} {
		got, err := ParseUlimit(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseUlimit(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if got := (Ulimit{Name: "nofile"}).Type(); got != "RLIMIT_NOFILE" {
		t.Errorf("Type() = %q", got)
	}
}

func TestParseSysctl(t *testing.T) {
	for _, tc := range []struct {
		in, name, value string
		wantErr         bool
	}{
		{in: "net.ipv4.ip_forward=1", name: "net.ipv4.ip_forward", value: "1"},
		{in: "kernel.msgmax = 65536", name: "kernel.msgmax", value: "65536"},
		{in: "a=", name: "a", value: ""},
		{in: "noequals", wantErr: true},
		{in: "=1", wantErr: true},
	} {
		name, value, err := ParseSysctl(tc.in)
		if (err != nil) != tc.wantErr || name != tc.name || value != tc.value {
			t.Errorf("ParseSysctl(%q) = %q, %q, %v", tc.in, name, value, err)
		}
	}
}
