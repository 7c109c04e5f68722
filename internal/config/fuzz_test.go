package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzLoad feeds arbitrary files to Load. Nothing may panic; a refusal is
// a config Error (naming file, line and key where it can); and what loads
// is valid and survives WriteTOML and a reload unchanged.
func FuzzLoad(f *testing.F) {
	var def bytes.Buffer
	if err := Default().WriteTOML(&def); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		def.String(),
		"",
		"listen = \"/run/x.sock\"\n",
		"[runtime]\ncgroup_driver = \"systemd\"\n",
		"[runtime]\ncgroup_driver = \"cgroupfs\"\ndefault_ulimits = [\"nofile=1024:2048\"]\ndefault_sysctls = [\"net.ipv4.ping_group_range=0 0\"]\n",
		"[runtime.handlers.kata]\ntype = \"shim\"\nshim = \"/usr/bin/containerd-shim-kata-v2\"\n",
		"[runtime.handlers.crun]\nruntime_path = \"/usr/bin/crun\"\n",
		"[image]\npause_image = \"registry.k8s.io/pause:3.10\"\n",
		"[network]\nplugin_dirs = [\"/usr/lib/cni\"]\nsetup_timeout = \"30s\"\n",
		"[runtime]\npids_limit = -5\n",
		"root = \"relative\"\n",
		"[[runtime]]\n",
		"a = { b = 1 }\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "cradle.toml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(p, "", RequireFile())
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load refused with %T %v, not a config Error", err, err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate refuses: %v", err)
		}
		var out bytes.Buffer
		if err := cfg.WriteTOML(&out); err != nil {
			t.Fatalf("WriteTOML: %v", err)
		}
		p2 := filepath.Join(dir, "again.toml")
		if err := os.WriteFile(p2, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := Load(p2, "", RequireFile())
		if err != nil {
			t.Fatalf("reloading what WriteTOML wrote: %v\n%s", err, out.Bytes())
		}
		if !reflect.DeepEqual(cfg, again) {
			t.Fatalf("WriteTOML and reload changed the config:\n%+v\n%+v", cfg, again)
		}
	})
}
