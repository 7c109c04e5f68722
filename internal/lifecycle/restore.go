package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/cradle-runtime/cradle/internal/container"
	"github.com/cradle-runtime/cradle/internal/netns"
	"github.com/cradle-runtime/cradle/internal/ocispec"
	"github.com/cradle-runtime/cradle/internal/recovery"
	"github.com/cradle-runtime/cradle/internal/sandbox"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// restore loads every record and reconciles it with what happened while
// the daemon was down.
func (m *Manager) restore() error {
	err := m.sbRecords.LoadAll(func(id string, data json.RawMessage) error {
		var r sandbox.Record
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if r.ID != id {
			return errors.New("record ID does not match its file name")
		}
		m.sandboxes.Add(id, sandbox.New(r))
		ocispec.ReserveSELinuxLabel(r.SELinuxLabel)
		m.sbNames.Reserve(r.Name, id)
		return nil
	})
	if err != nil {
		return err
	}
	err = m.ctrRecords.LoadAll(func(id string, data json.RawMessage) error {
		var r container.Record
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if r.ID != id {
			return errors.New("record ID does not match its file name")
		}
		c := container.New(r)
		ocispec.ReserveSELinuxLabel(r.SELinuxLabel)
		m.containers.Add(id, c)
		m.ctrNames.Reserve(r.Name, id)
		m.reconcile(c)
		return nil
	})
	if err != nil {
		return err
	}
	m.finishInterruptedCreates(context.Background())
	m.finishInterruptedRuns(context.Background())
	m.reconcileSandboxes()
	m.sweep(context.Background())
	return nil
}

// reconcileSandboxes marks pods NOTREADY whose namespaces or infra process
// did not survive while the daemon was down (a reboot, or a hand unmount).
func (m *Manager) reconcileSandboxes() {
	for _, sb := range m.sandboxes.List() {
		r := sb.Get()
		if r.State != sandbox.Ready {
			continue
		}
		lost := ""
		for _, p := range []string{r.NetNS, r.IPCNS, r.UTSNS} {
			if p != "" && !netns.IsNSFS(p) {
				lost = "namespace pin " + p + " is gone"
			}
		}
		if h, ok := m.pins.PIDHolderOf(r.ID); r.PIDHolder && !ok {
			lost = "pid holder exited"
		} else if r.PIDHolder {
			m.watchPIDHolder(sb, h)
		}
		if r.InfraID != "" {
			if c, err := m.containers.Get(r.InfraID); err != nil || c.Get().State == runtimeapi.ContainerState_CONTAINER_EXITED {
				lost = "infra container exited"
			}
		}
		if lost != "" {
			slog.Warn("pod sandbox did not survive; marking it NOTREADY", "sandbox", r.ID, "reason", lost)
			_, _ = sb.Transition(m.putSandbox, sandbox.NotReady, nil)
		}
	}
}

// finishInterruptedCreates removes containers whose CreateContainer died
// before the runtime reported them: no client ever got their IDs.
func (m *Manager) finishInterruptedCreates(ctx context.Context) {
	for _, c := range m.containers.List() {
		r := c.Get()
		if r.State != runtimeapi.ContainerState_CONTAINER_CREATED || r.Pid != 0 {
			continue
		}
		if err := m.removeContainer(ctx, c); err != nil {
			slog.Error("remove container of an interrupted CreateContainer", "container", r.ID, "error", err)
			continue
		}
		slog.Info("removed container of an interrupted CreateContainer", "container", r.ID)
	}
}

// finishInterruptedRuns releases sandboxes whose RunPodSandbox died half
// way. No client ever got their IDs, and a kubelet retry must find the name
// free. What cannot be released now stays as NOTREADY for Stop and Remove.
func (m *Manager) finishInterruptedRuns(ctx context.Context) {
	for _, sb := range m.sandboxes.List() {
		if sb.Get().State != sandbox.Creating {
			continue
		}
		sb.Op.Lock()
		err := m.removeSandbox(ctx, sb)
		sb.Op.Unlock()
		if err != nil {
			slog.Error("release interrupted RunPodSandbox; kept as NOTREADY", "sandbox", sb.ID(), "error", err)
			_, _ = sb.Transition(m.putSandbox, sandbox.NotReady, nil)
			continue
		}
		slog.Info("released sandbox of an interrupted RunPodSandbox", "sandbox", sb.ID())
	}
}

// sweep releases what belongs to no known sandbox or container: pins, pod
// dirs and shm mounts, writable layers, bundles, CNI results and IPs. It
// runs at start, after the records were restored.
func (m *Manager) sweep(ctx context.Context) {
	k := recovery.Known{Sandboxes: map[string]bool{}, Containers: map[string]bool{}}
	for _, sb := range m.sandboxes.List() {
		k.Sandboxes[sb.ID()] = true
	}
	for _, c := range m.containers.List() {
		k.Containers[c.ID()] = true
	}
	recovery.Sweep(ctx, recovery.Owners{
		Pins: m.pins, PodDirs: filepath.Join(m.config().RunRoot, "pods"), Layers: m.images,
		Bundles: m.bundles, Runtimes: m.runtimes, Monitor: m.monitor, Net: m.net,
	}, k)
}
