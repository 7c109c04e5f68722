package config

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestWriteTOMLRoundTrip(t *testing.T) {
	custom := Default()
	custom.LogLevel = LogLevelDebug
	custom.Runtime.CgroupParent = "weird \"quoted\"\\path\twith tab é"
	custom.Runtime.DefaultSysctls = []string{"net.ipv4.ip_forward=1"}
	custom.Runtime.DefaultUlimits = []string{"nofile=1024:2048", "nproc=512"}
	custom.Runtime.PidsLimit = 4096
	custom.Runtime.Handlers["kata"] = Handler{
		Type: HandlerTypeVM, Path: "/usr/bin/containerd-shim-kata-v2",
		InfraContainer: InfraAlways, AllowedAnnotations: []string{"io.katacontainers.*"},
		MonitorEnv: []string{"KATA_DEBUG=1"}, RuntimeArgs: []string{},
	}
	custom.Runtime.Handlers["runc-shim"] = Handler{
		Type: HandlerTypeVM, Path: "/usr/bin/containerd-shim-runc-v2", RuntimePath: "/usr/sbin/runc", Root: "/run/runc-shim",
		AllowedAnnotations: []string{}, MonitorEnv: []string{}, RuntimeArgs: []string{},
	}
	custom.Runtime.Handlers["odd.name"] = Handler{Type: HandlerTypeOCI, Path: "/bin/crun", AllowedAnnotations: []string{}, MonitorEnv: []string{}, RuntimeArgs: []string{"--debug"}}
	custom.Network.NetworkName = "podnet"
	custom.Image.StorageDriver = ""
	custom.Image.PullProgressTimeout = Duration(90 * time.Second)

	for _, tc := range []struct {
		name string
		cfg  *Config
	}{
		{"default", Default()},
		{"custom", custom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.cfg.WriteTOML(&buf); err != nil {
				t.Fatal(err)
			}
			path := writeFile(t, t.TempDir(), "cradle.toml", buf.String())
			got, err := Load(path, "", RequireFile())
			if err != nil {
				t.Fatalf("Load(WriteTOML output) = %v\n%s", err, buf.String())
			}
			if !reflect.DeepEqual(got, tc.cfg) {
				t.Fatalf("round trip changed the config:\n got %+v\nwant %+v\n%s", got, tc.cfg, buf.String())
			}
		})
	}
}

// Every key must be printed, preceded by its comment.
func TestWriteTOMLCoversEveryField(t *testing.T) {
	var buf bytes.Buffer
	if err := Default().WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, comment := tomlName(f), f.Tag.Get("comment")
			if name == "" || comment == "" {
				t.Errorf("field %s.%s lacks a toml or comment tag", typ.Name(), f.Name)
			}
			switch f.Type.Kind() {
			case reflect.Struct:
				if f.Type != reflect.TypeFor[Duration]() {
					walk(f.Type)
				}
				continue
			case reflect.Map:
				walk(f.Type.Elem())
				continue
			}
			if !strings.Contains(out, "# "+comment+"\n"+name+" = ") {
				t.Errorf("output lacks key %q with its comment", name)
			}
		}
	}
	walk(configType)
	for _, table := range []string{"[runtime]", "[runtime.handlers.runc]", "[network]", "[image]", "[streaming]", "[nri]"} {
		if !strings.Contains(out, "\n"+table+"\n") {
			t.Errorf("output lacks table %s", table)
		}
	}
}

func TestWriteTOMLQuotesHandlerNames(t *testing.T) {
	c := Default()
	c.Runtime.Handlers["odd.name"] = Handler{Type: HandlerTypeOCI, Path: "/bin/crun"}
	var buf bytes.Buffer
	if err := c.WriteTOML(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `[runtime.handlers."odd.name"]`) {
		t.Errorf("handler name not quoted:\n%s", buf.String())
	}
}
