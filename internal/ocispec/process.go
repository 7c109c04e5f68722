package ocispec

import (
	"path"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-tools/generate"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// AnnStopSignal carries the container's stop signal in its spec, as podman
// and the image spec name it.
const AnnStopSignal = "org.opencontainers.image.stopSignal"

func setProcess(g *generate.Generator, in *ContainerInput) error {
	cfg := in.Config
	args, err := processArgs(cfg, in.Image)
	if err != nil {
		return err
	}
	g.SetProcessArgs(args)
	cwd, err := workingDir(cfg, in.Image)
	if err != nil {
		return err
	}
	g.SetProcessCwd(cwd)
	g.SetProcessTerminal(cfg.GetTty())
	g.ClearProcessEnv()
	for _, e := range mergeEnv(in.Image.Env, cfg.GetEnvs(), cfg.GetTty(), in.Sandbox.Hostname) {
		g.AddProcessEnv(e[0], e[1])
	}
	if len(in.Defaults.Rlimits) > 0 {
		g.Config.Process.Rlimits = append([]specs.POSIXRlimit(nil), in.Defaults.Rlimits...)
	}
	return nil
}

// processArgs merges command and args with the image the Kubernetes way:
// a command replaces the image's Entrypoint and Cmd; args alone replace
// only its Cmd.
func processArgs(cfg *runtimeapi.ContainerConfig, img imgspecv1.ImageConfig) ([]string, error) {
	var out []string
	switch {
	case len(cfg.GetCommand()) > 0:
		out = append(append(out, cfg.GetCommand()...), cfg.GetArgs()...)
	case len(cfg.GetArgs()) > 0:
		out = append(append(out, img.Entrypoint...), cfg.GetArgs()...)
	default:
		out = append(append(out, img.Entrypoint...), img.Cmd...)
	}
	if len(out) == 0 {
		return nil, fieldErr("command", "no command given and the image has no Entrypoint or Cmd")
	}
	return out, nil
}

// workingDir is the config's, then the image's, then "/".
func workingDir(cfg *runtimeapi.ContainerConfig, img imgspecv1.ImageConfig) (string, error) {
	if d := cfg.GetWorkingDir(); d != "" {
		if !path.IsAbs(d) {
			return "", fieldErr("working_dir", "%q is not absolute", d)
		}
		return path.Clean(d), nil
	}
	if d := img.WorkingDir; d != "" {
		return path.Clean("/" + d), nil
	}
	return "/", nil
}

// mergeEnv applies the config's env over the image's; the config wins. A
// default PATH, TERM for a terminal and HOSTNAME come first, and either may
// override them.
func mergeEnv(image []string, cfg []*runtimeapi.KeyValue, tty bool, hostname string) [][2]string {
	idx := map[string]int{}
	var out [][2]string
	set := func(k, v string) {
		if k == "" {
			return
		}
		if i, ok := idx[k]; ok {
			out[i][1] = v
			return
		}
		idx[k] = len(out)
		out = append(out, [2]string{k, v})
	}
	set("PATH", DefaultPath)
	if tty {
		set("TERM", "xterm")
	}
	if hostname != "" {
		set("HOSTNAME", hostname)
	}
	for _, e := range image {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	for _, kv := range cfg {
		set(kv.GetKey(), string(kv.GetValue()))
	}
	return out
}

// StopSignal is the signal that stops the container, by name ("SIGTERM",
// "SIGRTMIN+3"): the config's stop_signal, else the image's STOPSIGNAL,
// else "" for the runtime's default (SIGTERM).
func StopSignal(cfg *runtimeapi.ContainerConfig, img imgspecv1.ImageConfig) string {
	s := cfg.GetStopSignal()
	if s == runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		return img.StopSignal
	}
	name := strings.TrimPrefix(s.String(), "SIGNAL_")
	switch {
	case strings.HasPrefix(name, "SIGRTMINPLUS"):
		return "SIGRTMIN+" + strings.TrimPrefix(name, "SIGRTMINPLUS")
	case strings.HasPrefix(name, "SIGRTMAXMINUS"):
		return "SIGRTMAX-" + strings.TrimPrefix(name, "SIGRTMAXMINUS")
	}
	return name
}
