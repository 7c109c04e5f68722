package shim

import (
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseStart(t *testing.T) {
	pb, err := proto.Marshal(&bootapi.BootstrapResult{Version: 3, Address: "unix:///run/containerd/s/ab", Protocol: "ttrpc"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		out  []byte
		want bootstrap
		bad  bool
	}{
		{"protobuf (2.3+)", pb, bootstrap{3, "unix:///run/containerd/s/ab", "ttrpc"}, false},
		{"json (2.0-2.2)", []byte(`{"version":3,"address":"unix:///run/containerd/s/cd","protocol":"ttrpc"}`),
			bootstrap{3, "unix:///run/containerd/s/cd", "ttrpc"}, false},
		{"plain (1.x)", []byte("unix:///run/containerd/s/ef\n"), bootstrap{2, "unix:///run/containerd/s/ef", "ttrpc"}, false},
		{"plain abstract (<=1.4)", []byte("/containerd-shim/x.sock"), bootstrap{2, "/containerd-shim/x.sock", "ttrpc"}, false},
		{"grpc", []byte(`{"version":3,"address":"unix:///x","protocol":"grpc"}`), bootstrap{}, true},
		{"empty", nil, bootstrap{}, true},
	} {
		got, err := parseStart(tc.out)
		if tc.bad {
			if err == nil {
				t.Errorf("%s: parsed %+v, want an error", tc.name, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestSocketPath(t *testing.T) {
	for addr, want := range map[string]string{
		"unix:///run/containerd/s/ab":       "/run/containerd/s/ab",
		"ttrpc+unix:///run/containerd/s/ab": "/run/containerd/s/ab",
		"/containerd-shim/x.sock":           "",
	} {
		if got := socketPath(addr); got != want {
			t.Errorf("socketPath(%q) = %q, want %q", addr, got, want)
		}
	}
}
