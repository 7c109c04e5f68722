package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage/pkg/archive"

	"github.com/cradle-runtime/cradle/internal/netns"
)

// Floor is what a pod costs with no daemon at all, measured in the same
// run: a network namespace pinned, CNI ADD, `runc run -d` of the image's
// rootfs; and what an exec costs, `runc exec` on that running container.
// No runtime can go below it with the same runc and plugins.
type Floor struct {
	Runc    string // the OCI runtime, the daemons' own
	CNIConf string // a conflist of a network of the floor's own
	CNIBin  []string
	// Layout and Ref name the image in an OCI layout, unpacked once.
	Layout, Ref string
}

// FloorResult is the floor's latencies.
type FloorResult struct {
	Pod  Summary `json:"pod"`  // pin + CNI ADD + runc run -d
	Exec Summary `json:"exec"` // runc exec of the exec command
}

// floor runs cfg.Iterations floor pods one at a time, one exec each.
func (b *bench) floor(ctx context.Context, f Floor) (*FloorResult, error) {
	dir := filepath.Join(b.cfg.WorkDir, "floor")
	rootfs := filepath.Join(dir, "rootfs")
	if err := unpackOCI(f.Layout, f.Ref, rootfs); err != nil {
		return nil, err
	}
	conf, err := os.ReadFile(f.CNIConf)
	if err != nil {
		return nil, fmt.Errorf("floor: %w", err)
	}
	list, err := libcni.ConfListFromBytes(conf)
	if err != nil {
		return nil, fmt.Errorf("floor: %s: %w", f.CNIConf, err)
	}
	cni := libcni.NewCNIConfigWithCacheDir(f.CNIBin, filepath.Join(dir, "cni-cache"), nil)
	var pods, execs []time.Duration
	b.log.Info("floor", "iterations", b.cfg.Iterations, "runc", f.Runc)
	for i := range b.cfg.Warmup + b.cfg.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, e, err := b.floorPod(ctx, f, dir, rootfs, list, cni)
		if err != nil {
			return nil, err
		}
		if i >= b.cfg.Warmup {
			pods, execs = append(pods, p), append(execs, e)
		}
	}
	return &FloorResult{Pod: Summarize(pods), Exec: Summarize(execs)}, nil
}

// floorPod is one floor pod's life; everything it made is gone when it
// returns, on error too.
func (b *bench) floorPod(ctx context.Context, f Floor, dir, rootfs string, list *libcni.NetworkConfigList, cni *libcni.CNIConfig) (pod, execd time.Duration, retErr error) {
	id := "floor-" + newUID()[:16]
	bundle := filepath.Join(dir, id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, 0, fmt.Errorf("floor: %w", err)
	}
	runcRoot := filepath.Join(dir, "runc")
	// Output goes to a file: a detached container inherits runc's stdio,
	// and a pipe would stay open as long as it runs.
	logPath := filepath.Join(bundle, "runc.out")
	runc := func(args ...string) error {
		out, err := os.Create(logPath)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		defer out.Close()
		cmd := exec.CommandContext(ctx, f.Runc, append([]string{"--root", runcRoot}, args...)...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(logPath)
			return fmt.Errorf("floor: runc %s: %w: %s", args[0], err, strings.TrimSpace(string(b)))
		}
		return nil
	}
	start := time.Now()
	pins, err := netns.Pin(netns.Request{ID: id, NetDir: netns.DefaultNetDir, Kinds: []netns.Kind{netns.Net}})
	if err != nil {
		return 0, 0, fmt.Errorf("floor: %w", err)
	}
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: pins.Net, IfName: "eth0"}
	defer func() {
		_ = runc("delete", "--force", id)
		cctx := context.WithoutCancel(ctx)
		errs := []error{retErr, cni.DelNetworkList(cctx, list, rt), netns.UnpinAll(pins), os.RemoveAll(bundle)}
		retErr = errors.Join(errs...)
	}()
	if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
		return 0, 0, fmt.Errorf("floor: CNI ADD: %w", err)
	}
	if err := writeFloorSpec(bundle, rootfs, pins.Net, filepath.Join(b.cfg.CgroupRoot, "floor", id), b.cfg.Command); err != nil {
		return 0, 0, err
	}
	if err := runc("run", "--detach", "--bundle", bundle, id); err != nil {
		return 0, 0, err
	}
	pod = time.Since(start)
	start = time.Now()
	if err := runc(append([]string{"exec", id}, b.cfg.Exec...)...); err != nil {
		return 0, 0, err
	}
	return pod, time.Since(start), nil
}

// writeFloorSpec writes a spec modelled on `runc spec`'s default, with the
// command, the pinned network namespace and a cgroup below the run's.
func writeFloorSpec(bundle, rootfs, netnsPath, cgroup string, args []string) error {
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: args, Cwd: "/", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Effective: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
				Permitted: []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			},
		},
		Hostname: "floor",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroup,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace, Path: netnsPath},
			},
			MaskedPaths:   []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	return nil
}

// unpackOCI applies the layers of image ref from an OCI layout to dest.
func unpackOCI(layout, ref, dest string) error {
	idx, err := readJSON[struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}](filepath.Join(layout, "index.json"))
	if err != nil {
		return err
	}
	digest := ""
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == ref {
			digest = m.Digest
		}
	}
	if digest == "" {
		return fmt.Errorf("floor: no image %q in the OCI layout %s", ref, layout)
	}
	man, err := readJSON[struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}](blobPath(layout, digest))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	for _, l := range man.Layers {
		f, err := os.Open(blobPath(layout, l.Digest))
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		_, err = archive.ApplyLayer(dest, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("floor: unpack layer %s: %w", l.Digest, err)
		}
	}
	return nil
}

func blobPath(layout, digest string) string {
	algo, hex, _ := strings.Cut(digest, ":")
	return filepath.Join(layout, "blobs", filepath.Base(algo), filepath.Base(hex))
}

func readJSON[T any](path string) (T, error) {
	var v T
	b, err := os.ReadFile(path)
	if err != nil {
		return v, fmt.Errorf("floor: %w", err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("floor: %s: %w", path, err)
	}
	return v, nil
}
