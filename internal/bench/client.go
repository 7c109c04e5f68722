package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// client is one runtime's CRI connection.
type client struct {
	t          Target
	conn       *grpc.ClientConn
	rt         runtimeapi.RuntimeServiceClient
	img        runtimeapi.ImageServiceClient
	rpcTimeout time.Duration
	log        *slog.Logger
}

func dial(t Target, rpcTimeout time.Duration, log *slog.Logger) (*client, error) {
	conn, err := grpc.NewClient(t.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", t.Name, t.Endpoint, err)
	}
	return &client{
		t: t, conn: conn, rpcTimeout: rpcTimeout, log: log.With("runtime", t.Name),
		rt:  runtimeapi.NewRuntimeServiceClient(conn),
		img: runtimeapi.NewImageServiceClient(conn),
	}, nil
}

func (c *client) close() { _ = c.conn.Close() }

// call runs one RPC under the per-call timeout and returns how long it took.
func (c *client) call(ctx context.Context, op string, f func(ctx context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.rpcTimeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	d := time.Since(start)
	if err != nil {
		return d, fmt.Errorf("%s %s: %w", c.t.Name, op, err)
	}
	return d, nil
}

func (c *client) version(ctx context.Context) (string, error) {
	var v *runtimeapi.VersionResponse
	_, err := c.call(ctx, "Version", func(ctx context.Context) (err error) {
		v, err = c.rt.Version(ctx, &runtimeapi.VersionRequest{})
		return err
	})
	if err != nil {
		return "", err
	}
	return v.GetRuntimeName() + " " + v.GetRuntimeVersion(), nil
}

// waitVersion retries Version until the daemon answers or wait passes.
func (c *client) waitVersion(ctx context.Context, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		v, err := c.version(ctx)
		if err == nil || time.Now().After(deadline) {
			return v, err
		}
		c.log.Debug("waiting for the runtime", "err", err)
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return "", err
		}
	}
}

func (c *client) pull(ctx context.Context, image string) (time.Duration, error) {
	return c.call(ctx, "PullImage "+image, func(ctx context.Context) error {
		_, err := c.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
		return err
	})
}

// pod is what one iteration created, so that a failure half-way can be
// cleaned up.
type pod struct {
	sandboxID   string
	containerID string
}

// timings receives each operation's latency.
type timings map[string]time.Duration

// startPod runs a sandbox and starts its container, timing each call.
func (c *client) startPod(ctx context.Context, w Workload, v Variant, seq int, uid string, tm timings) (*pod, error) {
	cfg := w.PodConfig(c.t.Name, v, seq, uid)
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil { // the kubelet's job
		return nil, fmt.Errorf("pod log directory: %w", err)
	}
	p := &pod{}
	d, err := c.call(ctx, OpRunPodSandbox, func(ctx context.Context) error {
		r, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
		p.sandboxID = r.GetPodSandboxId()
		return err
	})
	if err != nil {
		return p, err
	}
	tm[OpRunPodSandbox] = d
	d, err = c.call(ctx, OpCreateContainer, func(ctx context.Context) error {
		r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
			PodSandboxId: p.sandboxID, Config: w.ContainerConfig(v), SandboxConfig: cfg,
		})
		p.containerID = r.GetContainerId()
		return err
	})
	if err != nil {
		return p, err
	}
	tm[OpCreateContainer] = d
	d, err = c.call(ctx, OpStartContainer, func(ctx context.Context) error {
		_, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: p.containerID})
		return err
	})
	if err != nil {
		return p, err
	}
	tm[OpStartContainer] = d
	tm[OpContainerStart] = tm[OpCreateContainer] + tm[OpStartContainer]
	tm[OpPodStart] = tm[OpRunPodSandbox] + tm[OpContainerStart]
	return p, nil
}

// execSync runs the workload's exec command in the container.
func (c *client) execSync(ctx context.Context, w Workload, p *pod, tm timings) error {
	d, err := c.call(ctx, OpExecSync, func(ctx context.Context) error {
		r, err := c.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: p.containerID, Cmd: w.Exec, Timeout: 30})
		if err == nil && r.GetExitCode() != 0 {
			err = fmt.Errorf("exit code %d: %s", r.GetExitCode(), r.GetStderr())
		}
		return err
	})
	if err != nil {
		return err
	}
	tm[OpExecSync] = d
	return nil
}

// stopPod stops and removes the container and then the sandbox, timing
// each call. Nothing is left to clean up when it succeeds.
func (c *client) stopPod(ctx context.Context, p *pod, tm timings) error {
	steps := []struct {
		op string
		f  func(ctx context.Context) error
	}{
		{OpStopContainer, func(ctx context.Context) error {
			_, err := c.rt.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: p.containerID, Timeout: 0})
			return err
		}},
		{OpRemoveContainer, func(ctx context.Context) error {
			_, err := c.rt.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: p.containerID})
			return err
		}},
		{OpStopPodSandbox, func(ctx context.Context) error {
			_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.sandboxID})
			return err
		}},
		{OpRemovePodSandbox, func(ctx context.Context) error {
			_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.sandboxID})
			return err
		}},
	}
	var total time.Duration
	for _, s := range steps {
		d, err := c.call(ctx, s.op, s.f)
		if err != nil {
			return err
		}
		tm[s.op] = d
		total += d
	}
	tm[OpContainerRemove] = tm[OpStopContainer] + tm[OpRemoveContainer]
	tm[OpPodTeardown] = total
	return nil
}

// removePod force-removes what p holds, ignoring errors of things already
// gone; it runs after a failure and in the final sweep.
func (c *client) removePod(ctx context.Context, sandboxID string) error {
	if sandboxID == "" {
		return nil
	}
	var errs []error
	_, err := c.call(ctx, "StopPodSandbox", func(ctx context.Context) error {
		_, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sandboxID})
		return err
	})
	errs = append(errs, err)
	_, err = c.call(ctx, "RemovePodSandbox", func(ctx context.Context) error {
		_, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sandboxID})
		return err
	})
	if err == nil {
		return nil // RemovePodSandbox removes the containers too
	}
	errs = append(errs, err)
	return errors.Join(errs...)
}

// runPods lists the sandboxes and containers the run labeled.
func (c *client) runPods(ctx context.Context, runID string) (sandboxes, containers []string, err error) {
	_, err = c.call(ctx, "ListPodSandbox", func(ctx context.Context) error {
		r, err := c.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
			Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{LabelRun: runID}},
		})
		for _, s := range r.GetItems() {
			sandboxes = append(sandboxes, s.GetId())
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	_, err = c.call(ctx, "ListContainers", func(ctx context.Context) error {
		r, err := c.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{
			Filter: &runtimeapi.ContainerFilter{LabelSelector: map[string]string{LabelRun: runID}},
		})
		for _, s := range r.GetContainers() {
			containers = append(containers, s.GetId())
		}
		return err
	})
	return sandboxes, containers, err
}
