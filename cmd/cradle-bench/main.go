// Command cradle-bench measures CRI runtimes side by side: latency
// percentiles of the pod and container lifecycle calls and the memory of
// the daemon and its per-pod processes. hack/bench.sh runs it against
// cradle and containerd; see docs/benchmarks.md.
//
//	cradle-bench -runtime cradle=unix:///run/cradle-bench/cradle/cradle.sock \
//	             -runtime containerd=unix:///run/cradle-bench/containerd/containerd.sock
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cradle-runtime/cradle/internal/bench"
)

type targets []bench.Target

func (t *targets) String() string {
	var s []string
	for _, x := range *t {
		s = append(s, x.Name+"="+x.Endpoint)
	}
	return strings.Join(s, " ")
}

func (t *targets) Set(v string) error {
	x, err := bench.ParseTarget(v)
	if err != nil {
		return err
	}
	*t = append(*t, x)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cradle-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		rts        targets
		cfg        bench.Config
		variants   = flag.String("variants", "pid-container,pid-pod", "pod shapes to run: pid-container (a PID namespace per container), pid-pod (shared)")
		command    = flag.String("command", "sleep 3600", "the container's command (space-separated)")
		execCmd    = flag.String("exec", "true", "the ExecSync command (space-separated)")
		pull       = flag.String("pull", "registry.k8s.io/e2e-test-images/busybox:1.29-2,registry.k8s.io/pause:3.10", "images to pull before the timed loop, comma-separated")
		jsonOut    = flag.String("json", "", "also write the report as JSON to this file")
		timeout    = flag.Duration("timeout", 30*time.Minute, "bound on the whole run; the cleanup still runs after it")
		logLevel   = flag.String("log-level", "info", "debug, info, warn or error")
		workDirArg = flag.String("work-dir", "", "directory for pod log directories (default: a new temporary directory); removed at the end")
		loads      = flag.String("loads", "", "concurrent loads PODSxCONCURRENCY, comma-separated (e.g. 40x4,100x8), in the first variant's pod shape")
		floorRunc  = flag.String("floor-runc", "", "measure the no-daemon floor with this runc (also needs -floor-cni-conf and -floor-image)")
		floorCNI   = flag.String("floor-cni-conf", "", "the floor's CNI conflist (a network of its own)")
		floorBin   = flag.String("floor-cni-bin", "/usr/lib/cni", "the floor's CNI plugin directories, comma-separated")
		kubeletBin = flag.String("kubelet", "", "also start this many static pods through a standalone kubelet (this binary) on each runtime and read its pod start histograms")
		kubeletN   = flag.Int("kubelet-pods", 20, "static pods of the kubelet workload")
		kubeletDir = flag.String("kubelet-dir", "/var/lib/cradle-bench/kubelet", "the kubelet workload's root, config and log dirs (one per runtime below it); removed at the end")
		kubeletCg  = flag.String("kubelet-cgroup-root", "/cradle-bench-kubelet", "parent of the kubelets' cgroupRoot (<root>/<runtime>); removed at the end")
		floorImage = flag.String("floor-image", "", "the floor's rootfs: an image in an OCI layout, LAYOUT_DIR:REF")
	)
	flag.Var(&rts, "runtime", "a runtime to benchmark, NAME=unix:///SOCKET[,pid=PID] (repeat; the daemon's PID is found by the socket if not given)")
	flag.IntVar(&cfg.Iterations, "iterations", 30, "timed pod lifecycles per variant and runtime")
	flag.IntVar(&cfg.Warmup, "warmup", 3, "untimed pod lifecycles before the timed ones")
	flag.IntVar(&cfg.Pods, "pods", 10, "pods running while memory is measured (0 skips memory)")
	flag.StringVar(&cfg.Image, "image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "the container image")
	flag.StringVar(&cfg.CgroupRoot, "cgroup-root", "/cradle-bench", "cgroupfs parent of the pods' cgroups (<root>/<runtime>/<variant>/pod<uid>); removed at the end")
	flag.DurationVar(&cfg.RPCTimeout, "rpc-timeout", 2*time.Minute, "timeout of each CRI call")
	flag.DurationVar(&cfg.Wait, "wait", 0, "wait this long for each runtime to answer before giving up (a daemon just started)")
	flag.StringVar(&cfg.PullImage, "pull-bench", "", "time cold pulls of this image (removed before each pull) after everything else; empty skips it")
	flag.IntVar(&cfg.PullReps, "pull-reps", 3, "cold pulls of -pull-bench per runtime")
	flag.DurationVar(&cfg.Settle, "settle", 3*time.Second, "wait before each memory measurement")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	slog.SetDefault(log)

	var err error
	if cfg.Variants, err = bench.ParseVariants(*variants); err != nil {
		return err
	}
	cfg.Targets = rts
	cfg.Command = strings.Fields(*command)
	cfg.Exec = strings.Fields(*execCmd)
	for _, img := range strings.Split(*pull, ",") {
		if img = strings.TrimSpace(img); img != "" {
			cfg.PullImages = append(cfg.PullImages, img)
		}
	}
	cfg.Log = log
	cfg.WorkDir = *workDirArg
	if cfg.Loads, err = bench.ParseLoads(*loads); err != nil {
		return err
	}
	if *floorRunc != "" {
		layout, ref, ok := strings.Cut(*floorImage, ":")
		if !ok {
			return fmt.Errorf("-floor-image %q: want LAYOUT_DIR:REF", *floorImage)
		}
		cfg.Floor = &bench.Floor{Runc: *floorRunc, CNIConf: *floorCNI, CNIBin: strings.Split(*floorBin, ","), Layout: layout, Ref: ref}
	}
	if *kubeletBin != "" {
		cfg.Kubelet = &bench.Kubelet{Bin: *kubeletBin, Pods: *kubeletN, Dir: *kubeletDir, CgroupRoot: *kubeletCg, Timeout: 5 * time.Minute}
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it reads other processes' memory and removes cgroups")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	report, runErr := bench.Run(ctx, cfg)
	if report != nil {
		if err := report.Write(os.Stdout); err != nil {
			runErr = errors.Join(runErr, err)
		}
		if *jsonOut != "" {
			b, err := json.MarshalIndent(report, "", "  ")
			if err == nil {
				err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
			}
			if err != nil {
				runErr = errors.Join(runErr, fmt.Errorf("write %s: %w", *jsonOut, err))
			}
		}
	}
	return runErr
}
