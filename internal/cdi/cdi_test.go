package cdi

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testSpec = `cdiVersion: "0.6.0"
kind: example.com/dev
devices:
- name: one
  containerEdits:
    env: ["ONE=1"]
    deviceNodes:
    - path: /dev/cdi-one
      hostPath: /dev/null
- name: two
  containerEdits:
    env: ["TWO=2"]
containerEdits:
  env: ["VENDOR=example"]
`

func TestDevicesAndInject(t *testing.T) {
	low, high := t.TempDir(), t.TempDir()
	r := New([]string{low, high})
	// Written after New: Devices rereads the directories.
	if err := os.WriteFile(filepath.Join(low, "example.yaml"), []byte(testSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	names, err := r.Devices(Request{
		Devices:     []string{"example.com/dev=one"},
		Annotations: map[string]string{"cdi.k8s.io/plugin_x": "example.com/dev=two,example.com/dev=one", "other": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"example.com/dev=one", "example.com/dev=two"}) {
		t.Fatalf("names %v", names)
	}
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	if err := r.Inject(spec, names); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"ONE=1", "TWO=2", "VENDOR=example"} {
		if !slices.Contains(spec.Process.Env, e) {
			t.Errorf("env %v lacks %s", spec.Process.Env, e)
		}
	}
	if len(spec.Linux.Devices) != 1 || spec.Linux.Devices[0].Path != "/dev/cdi-one" || spec.Linux.Devices[0].Major != 1 || spec.Linux.Devices[0].Minor != 3 {
		t.Errorf("devices %+v", spec.Linux.Devices)
	}

	none, err := r.Devices(Request{Annotations: map[string]string{"a": "b"}})
	if err != nil || none != nil {
		t.Errorf("no devices: %v, %v", none, err)
	}
	for _, c := range []struct {
		req   Request
		field string
		msg   string
	}{
		{Request{Devices: []string{"example.com/dev=one", "example.com/dev=three"}}, "cdi_devices", "unknown CDI device example.com/dev=three"},
		{Request{Devices: []string{"example.com/dev=one", "not-qualified"}}, "cdi_devices[1].name", "not-qualified"},
		{Request{Annotations: map[string]string{"cdi.k8s.io/p": "example.com/dev=nope"}}, "annotations", "example.com/dev=nope"},
	} {
		_, err := r.Devices(c.req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Msg, c.msg) {
			t.Errorf("%v: %v, want a FieldError on %s naming %q", c.req, err, c.field, c.msg)
		}
	}
}
