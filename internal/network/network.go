// Package network attaches pods to the CNI network through libcni.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/cradle-runtime/cradle/internal/observe"
	"github.com/fsnotify/fsnotify"
	"go.opentelemetry.io/otel/attribute"
)

// Options configure the CNI manager.
type Options struct {
	ConfDir     string
	PluginDirs  []string
	CacheDir    string
	NetworkName string // "" picks the first config file in lexical order
	// Observer is told of every ADD and DEL; nil observes nothing.
	Observer observe.Observer
}

// Manager owns the current CNI config, reloading it when the directory changes.
type Manager struct {
	opts Options
	cni  *libcni.CNIConfig
	obs  observe.Observer

	mu      sync.RWMutex
	list    *libcni.NetworkConfigList
	loadErr error

	watcher *fsnotify.Watcher
}

// New loads the config and starts watching the directory.
func New(opts Options) (*Manager, error) {
	if err := os.MkdirAll(opts.ConfDir, 0o755); err != nil {
		return nil, fmt.Errorf("create CNI config dir %s: %w", opts.ConfDir, err)
	}
	m := &Manager{
		opts: opts,
		obs:  observe.Or(opts.Observer),
		cni:  libcni.NewCNIConfigWithCacheDir(opts.PluginDirs, opts.CacheDir, &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}}),
	}
	m.reload()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch CNI config dir: %w", err)
	}
	if err := w.Add(opts.ConfDir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch CNI config dir %s: %w", opts.ConfDir, err)
	}
	m.watcher = w
	go m.watch()
	return m, nil
}

// Close stops the watcher.
func (m *Manager) Close() {
	if m.watcher != nil {
		m.watcher.Close()
	}
}

func (m *Manager) watch() {
	for {
		select {
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			slog.Debug("CNI config dir changed", "event", ev.String())
			m.reload()
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			slog.Warn("CNI config watcher", "error", err)
		}
	}
}

func (m *Manager) reload() {
	list, err := m.load()
	m.mu.Lock()
	changed := (list == nil) != (m.list == nil) || (list != nil && m.list != nil && list.Name != m.list.Name) || fmt.Sprint(err) != fmt.Sprint(m.loadErr)
	m.list, m.loadErr = list, err
	m.mu.Unlock()
	if changed {
		if err != nil {
			slog.Warn("no usable CNI config", "dir", m.opts.ConfDir, "error", err)
		} else {
			slog.Info("loaded CNI config", "network", list.Name, "dir", m.opts.ConfDir)
		}
	}
}

func (m *Manager) load() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(m.opts.ConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.opts.ConfDir, err)
	}
	sort.Strings(files)
	var problems []string
	for _, f := range files {
		list, err := loadFile(f)
		if err == nil && m.opts.NetworkName != "" && list.Name != m.opts.NetworkName {
			continue
		}
		if err == nil {
			err = m.checkPlugins(list)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", filepath.Base(f), err))
			continue
		}
		return list, nil
	}
	want := "no network config found in " + m.opts.ConfDir
	if m.opts.NetworkName != "" {
		want = fmt.Sprintf("no network config named %q found in %s", m.opts.NetworkName, m.opts.ConfDir)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s (%s)", want, strings.Join(problems, "; "))
	}
	return nil, errors.New(want)
}

func loadFile(f string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(f, ".conflist") {
		return libcni.ConfListFromFile(f)
	}
	conf, err := libcni.ConfFromFile(f)
	if err != nil {
		return nil, err
	}
	if conf.Network.Type == "" {
		return libcni.ConfListFromFile(f) // a .json or .conf that holds a list
	}
	return libcni.ConfListFromConf(conf)
}

func (m *Manager) checkPlugins(list *libcni.NetworkConfigList) error {
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, m.opts.PluginDirs); err != nil {
			return fmt.Errorf("plugin %q not found in %s", p.Network.Type, strings.Join(m.opts.PluginDirs, ":"))
		}
	}
	return nil
}

// Ready reports whether pods can be networked, and why not.
func (m *Manager) Ready() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.list == nil {
		return m.loadErr
	}
	return nil
}

func (m *Manager) current() (*libcni.NetworkConfigList, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.list == nil {
		return nil, fmt.Errorf("network plugin not ready: %w", m.loadErr)
	}
	return m.list, nil
}

// PortMapping is one hostPort for the portmap plugin.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

// Bandwidth is the bandwidth plugin's runtime config.
type Bandwidth struct {
	IngressRate  uint64 `json:"ingressRate,omitempty"`
	IngressBurst uint64 `json:"ingressBurst,omitempty"`
	EgressRate   uint64 `json:"egressRate,omitempty"`
	EgressBurst  uint64 `json:"egressBurst,omitempty"`
}

// Pod names one attachment.
type Pod struct {
	ID, Name, Namespace, UID string
	NetNS                    string // pinned path; "" when the namespace is already gone
	PortMappings             []PortMapping
	Bandwidth                *Bandwidth
}

// Attachment is the persisted outcome of ADD.
type Attachment struct {
	Network   string          `json:"network"`
	IfName    string          `json:"ifName"`
	IPs       []string        `json:"ips"`
	Gateways  []string        `json:"gateways,omitempty"`
	Result    json.RawMessage `json:"result"`
	RawConfig json.RawMessage `json:"config"` // the config list used, so DEL works after the dir changed
}

const ifName = "eth0"

func (p *Pod) runtimeConf() *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: p.ID,
		NetNS:       p.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", p.Namespace},
			{"K8S_POD_NAME", p.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", p.ID},
			{"K8S_POD_UID", p.UID},
		},
		CapabilityArgs: map[string]any{},
	}
	if len(p.PortMappings) > 0 {
		rt.CapabilityArgs["portMappings"] = p.PortMappings
	}
	if p.Bandwidth != nil {
		rt.CapabilityArgs["bandwidth"] = p.Bandwidth
	}
	return rt
}

// Setup runs CNI ADD. On failure it runs DEL so nothing stays allocated.
func (m *Manager) Setup(ctx context.Context, p *Pod) (*Attachment, error) {
	list, err := m.current()
	if err != nil {
		return nil, err
	}
	rt := p.runtimeConf()
	addCtx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	start := time.Now()
	addCtx, span := observe.StartSpan(addCtx, "CNI ADD", attribute.String("cni.network", list.Name))
	res, err := m.cni.AddNetworkList(addCtx, list, rt)
	observe.EndSpan(span, err)
	m.obs.CNI(observe.CNIAdd, time.Since(start), err)
	if err != nil {
		// Release anything a plugin early in the chain allocated.
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cniTimeout)
		defer cancel()
		start := time.Now()
		derr := m.cni.DelNetworkList(delCtx, list, rt)
		m.obs.CNI(observe.CNIDel, time.Since(start), derr)
		if derr != nil {
			slog.Warn("CNI DEL after failed ADD", "sandbox", p.ID, "error", derr)
		}
		return nil, fmt.Errorf("CNI ADD on network %s: %w", list.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("convert CNI result: %w", err)
	}
	raw, _ := json.Marshal(r)
	a := &Attachment{Network: list.Name, IfName: ifName, Result: raw, RawConfig: list.Bytes}
	for _, ip := range r.IPs {
		a.IPs = append(a.IPs, ip.Address.IP.String())
		if ip.Gateway != nil {
			a.Gateways = append(a.Gateways, ip.Gateway.String())
		}
	}
	return a, nil
}

// Teardown runs CNI DEL with the config used at ADD (or the current one). A
// plugin's "not found" counts as success: the goal is that nothing is held.
func (m *Manager) Teardown(ctx context.Context, p *Pod, a *Attachment) error {
	var list *libcni.NetworkConfigList
	if a != nil && len(a.RawConfig) > 0 {
		l, err := libcni.ConfListFromBytes(a.RawConfig)
		if err == nil {
			list = l
		}
	}
	if list == nil {
		l, err := m.current()
		if err != nil {
			return err
		}
		list = l
	}
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	start := time.Now()
	ctx, span := observe.StartSpan(ctx, "CNI DEL", attribute.String("cni.network", list.Name))
	err := m.cni.DelNetworkList(ctx, list, p.runtimeConf())
	if err != nil && isNotFound(err) {
		// What is gone is released: a success for the span and the metrics.
		span.AddEvent("already gone")
		observe.EndSpan(span, nil)
		m.obs.CNI(observe.CNIDel, time.Since(start), nil)
		slog.Info("CNI DEL: already gone", "sandbox", p.ID, "error", err)
		return nil
	}
	observe.EndSpan(span, err)
	m.obs.CNI(observe.CNIDel, time.Since(start), err)
	if err != nil {
		return fmt.Errorf("CNI DEL on network %s: %w", list.Name, err)
	}
	return nil
}

func isNotFound(err error) bool {
	var cerr *cnitypes.Error
	if errors.As(err, &cerr) && cerr.Code == cnitypes.ErrInvalidNetworkConfig {
		return false
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "not found") || strings.Contains(s, "no such file") || strings.Contains(s, "does not exist")
}

// GC asks the plugins to release every attachment not in valid. Plugins
// that predate CNI 1.1 simply don't support it; that is not an error.
func (m *Manager) GC(ctx context.Context, valid []string) error {
	list, err := m.current()
	if err != nil {
		return err
	}
	args := &libcni.GCArgs{}
	for _, id := range valid {
		args.ValidAttachments = append(args.ValidAttachments, cnitypes.GCAttachment{ContainerID: id, IfName: ifName})
	}
	ctx, cancel := context.WithTimeout(ctx, gcTimeout)
	defer cancel()
	if err := m.cni.GCNetworkList(ctx, list, args); err != nil {
		return fmt.Errorf("CNI GC on network %s: %w", list.Name, err)
	}
	return nil
}

// CachedAttachments lists the sandbox IDs that libcni still has results for.
func (m *Manager) CachedAttachments() ([]string, error) {
	dir := filepath.Join(m.opts.CacheDir, "results")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		// libcni names results "<network>-<containerID>-<ifname>".
		n := strings.TrimSuffix(e.Name(), "-"+ifName)
		if i := strings.LastIndex(n, "-"); i >= 0 {
			ids = append(ids, n[i+1:])
		}
	}
	return ids, nil
}
