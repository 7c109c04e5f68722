package ocispec

import (
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestProcess(t *testing.T) {
	runSpecCases(t, []specCase{
		{
			name: "command replaces entrypoint and cmd",
			in:   func(in *ContainerInput) { in.Config.Command = []string{"/bin/sh", "-c"} },
			want: func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c"} },
		},
		{
			name: "command and args",
			in: func(in *ContainerInput) {
				in.Config.Command = []string{"/bin/sh"}
				in.Config.Args = []string{"-c", "true"}
			},
			want: func(s *specs.Spec) { s.Process.Args = []string{"/bin/sh", "-c", "true"} },
		},
		{
			name: "args replace only cmd",
			in:   func(in *ContainerInput) { in.Config.Args = []string{"--port", "80"} },
			want: func(s *specs.Spec) { s.Process.Args = []string{"/entry", "--port", "80"} },
		},
		{
			name: "args with no image entrypoint",
			in: func(in *ContainerInput) {
				in.Image.Entrypoint = nil
				in.Config.Args = []string{"echo", "hi"}
			},
			want: func(s *specs.Spec) { s.Process.Args = []string{"echo", "hi"} },
		},
		{
			name: "image cmd alone",
			in:   func(in *ContainerInput) { in.Image.Entrypoint = nil },
			want: func(s *specs.Spec) { s.Process.Args = []string{"serve"} },
		},
		{
			name: "working dir from the config",
			in:   func(in *ContainerInput) { in.Config.WorkingDir = "/work/" },
			want: func(s *specs.Spec) { s.Process.Cwd = "/work" },
		},
		{
			name: "working dir defaults to /",
			in:   func(in *ContainerInput) { in.Image.WorkingDir = "" },
			want: func(s *specs.Spec) { s.Process.Cwd = "/" },
		},
		{
			name: "a relative image working dir is taken from /",
			in:   func(in *ContainerInput) { in.Image.WorkingDir = "app" },
			want: func(s *specs.Spec) { s.Process.Cwd = "/app" },
		},
		{
			name: "env: the config wins over the image, which wins over the defaults",
			in: func(in *ContainerInput) {
				in.Image.Env = []string{"A=1", "B=2", "HOSTNAME=img", "EMPTY"}
				in.Config.Envs = []*runtimeapi.KeyValue{
					{Key: "B", Value: []byte("config")}, {Key: "C", Value: []byte("3=4")}, {Key: "HOME", Value: []byte("/h")},
				}
			},
			want: func(s *specs.Spec) {
				s.Process.Env = []string{"PATH=" + DefaultPath, "HOSTNAME=img", "A=1", "B=config", "EMPTY=", "C=3=4", "HOME=/h"}
			},
		},
		{
			name: "tty gets a terminal and TERM; stdin is conmon's",
			in: func(in *ContainerInput) {
				in.Config.Tty, in.Config.Stdin, in.Config.StdinOnce = true, true, true
			},
			want: func(s *specs.Spec) {
				s.Process.Terminal = true
				s.Process.Env = []string{"PATH=/img/bin", "TERM=xterm", "HOSTNAME=podhost", "A=1", "HOME=/root"}
			},
		},
		{
			name: "config TERM wins",
			in: func(in *ContainerInput) {
				in.Config.Tty = true
				in.Config.Envs = []*runtimeapi.KeyValue{{Key: "TERM", Value: []byte("vt100")}}
			},
			want: func(s *specs.Spec) {
				s.Process.Terminal = true
				s.Process.Env = []string{"PATH=/img/bin", "TERM=vt100", "HOSTNAME=podhost", "A=1", "HOME=/root"}
			},
		},
		{
			name: "default rlimits",
			in: func(in *ContainerInput) {
				in.Defaults.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_NPROC", Soft: 10, Hard: 10}}
			},
			want: func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_NPROC", Soft: 10, Hard: 10}}
			},
		},
		{
			name: "the image's stop signal",
			in:   func(in *ContainerInput) { in.Image.StopSignal = "SIGQUIT" },
			want: func(s *specs.Spec) { s.Annotations[AnnStopSignal] = "SIGQUIT" },
		},
		{
			name: "the config's stop signal wins",
			in: func(in *ContainerInput) {
				in.Image.StopSignal = "SIGQUIT"
				in.Config.StopSignal = runtimeapi.Signal_SIGNAL_SIGUSR1
			},
			want: func(s *specs.Spec) { s.Annotations[AnnStopSignal] = "SIGUSR1" },
		},
		{
			name: "no hostname nor HOSTNAME without one",
			in:   func(in *ContainerInput) { in.Sandbox.Hostname = "" },
			want: func(s *specs.Spec) {
				s.Hostname = ""
				s.Process.Env = []string{"PATH=/img/bin", "A=1", "HOME=/root"}
			},
		},
	})
	runErrCases(t, []errCase{
		{
			name:  "no command at all",
			in:    func(in *ContainerInput) { in.Image.Entrypoint, in.Image.Cmd = nil, nil },
			field: "command", msg: "no command",
		},
		{
			name:  "relative working dir",
			in:    func(in *ContainerInput) { in.Config.WorkingDir = "rel" },
			field: "working_dir", msg: "not absolute",
		},
	})
}

func TestStopSignal(t *testing.T) {
	img := imgspecv1.ImageConfig{StopSignal: "SIGWINCH"}
	for sig, want := range map[runtimeapi.Signal]string{
		runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT: "SIGWINCH",
		runtimeapi.Signal_SIGNAL_SIGTERM:         "SIGTERM",
		runtimeapi.Signal_SIGNAL_SIGKILL:         "SIGKILL",
		runtimeapi.Signal_SIGNAL_SIGRTMIN:        "SIGRTMIN",
		runtimeapi.Signal_SIGNAL_SIGRTMINPLUS3:   "SIGRTMIN+3",
		runtimeapi.Signal_SIGNAL_SIGRTMAXMINUS2:  "SIGRTMAX-2",
		runtimeapi.Signal_SIGNAL_SIGRTMAX:        "SIGRTMAX",
	} {
		if got := StopSignal(&runtimeapi.ContainerConfig{StopSignal: sig}, img); got != want {
			t.Errorf("StopSignal(%v) = %q, want %q", sig, got, want)
		}
	}
	if got := StopSignal(&runtimeapi.ContainerConfig{}, imgspecv1.ImageConfig{}); got != "" {
		t.Errorf("StopSignal with nothing = %q, want \"\"", got)
	}
}
