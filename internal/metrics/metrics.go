// Package metrics serves cradle's Prometheus metrics, and optionally
// net/http/pprof, on an opt-in HTTP address: the CRI operations with their
// gRPC codes and latencies, pod and container start latency, image pulls,
// OOM kills, ExecSync timeouts, CNI calls, pods and containers by state,
// and the Go runtime and process collectors. The domain packages report
// through observe.Observer, which Metrics implements, so none of them
// imports Prometheus.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path"
	"sync"
	"time"

	"github.com/cradle-runtime/cradle/internal/observe"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Counts gives the number of pods and containers in each state, read at
// scrape time so the figures are never stale.
type Counts func() (sandboxes, containers map[string]int)

// Metrics holds the daemon's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry
	ops *prometheus.CounterVec
	dur *prometheus.HistogramVec

	podStart, ctrStart     prometheus.Histogram
	pulls, pullFail        *prometheus.CounterVec
	pullBytes              *prometheus.CounterVec
	pullDur                *prometheus.HistogramVec
	oomKills, execTimeouts prometheus.Counter
	cniDur                 *prometheus.HistogramVec
	cniErrs                *prometheus.CounterVec

	regMu      sync.Mutex
	registries map[string]bool // registry label values in use
}

// maxRegistries bounds the registry label: the hosts come from requests,
// so past this many distinct ones the rest are counted as otherRegistry.
const (
	maxRegistries = 64
	otherRegistry = "(other)"
)

var _ observe.Observer = (*Metrics)(nil)

// latency buckets, from a fast local call to a slow pull or hung plugin.
var buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}

// New registers the collectors; counts may be nil.
func New(counts Counts) *Metrics {
	m := &Metrics{
		reg:        prometheus.NewRegistry(),
		registries: map[string]bool{},
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "cri", Name: "operations_total",
			Help: "CRI calls by method and gRPC status code.",
		}, []string{"method", "code"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "cri", Name: "operation_duration_seconds",
			Help:    "Latency of CRI calls by method.",
			Buckets: buckets,
		}, []string{"method"}),
		podStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "pod", Name: "start_duration_seconds",
			Help:    "Time RunPodSandbox took to make a pod ready (pin, network, infra), for pods that became ready.",
			Buckets: buckets,
		}),
		ctrStart: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "container", Name: "start_duration_seconds",
			Help:    "Time StartContainer took to make a container run, for containers that started.",
			Buckets: buckets,
		}),
		pulls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "image", Name: "pulls_total",
			Help: "Image pulls by registry host, failed ones included.",
		}, []string{"registry"}),
		pullFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "image", Name: "pull_failures_total",
			Help: "Failed image pulls by registry host.",
		}, []string{"registry"}),
		pullBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "image", Name: "pull_bytes_total",
			Help: "Bytes transferred by image pulls, by registry host.",
		}, []string{"registry"}),
		pullDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "image", Name: "pull_duration_seconds",
			Help:    "Duration of successful image pulls by registry host.",
			Buckets: buckets,
		}, []string{"registry"}),
		oomKills: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "containers", Name: "oom_killed_total",
			Help: "Container exits recorded as OOM kills.",
		}),
		execTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "exec_sync", Name: "timeouts_total",
			Help: "ExecSync commands killed at their timeout.",
		}),
		cniDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "cni", Name: "operation_duration_seconds",
			Help:    "Latency of CNI ADD and DEL (a whole plugin chain), failed ones included.",
			Buckets: buckets,
		}, []string{"op"}),
		cniErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "cni", Name: "operation_errors_total",
			Help: "Failed CNI ADD and DEL calls.",
		}, []string{"op"}),
	}
	// Both ops exist from the start, so a rate over errors is never absent.
	for _, op := range []string{observe.CNIAdd, observe.CNIDel} {
		m.cniErrs.WithLabelValues(op)
	}
	m.reg.MustRegister(m.ops, m.dur, m.podStart, m.ctrStart, m.pulls, m.pullFail, m.pullBytes, m.pullDur,
		m.oomKills, m.execTimeouts, m.cniDur, m.cniErrs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if counts != nil {
		m.reg.MustRegister(&stateCollector{counts: counts})
	}
	return m
}

// Unary records every CRI call; it runs outermost so a call that panics
// is counted with the Internal code the recovery gives it.
func (m *Metrics) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	method := path.Base(info.FullMethod)
	m.ops.WithLabelValues(method, status.Code(err).String()).Inc()
	m.dur.WithLabelValues(method).Observe(time.Since(start).Seconds())
	return resp, err
}

// PodStarted implements observe.Observer.
func (m *Metrics) PodStarted(d time.Duration) { m.podStart.Observe(d.Seconds()) }

// ContainerStarted implements observe.Observer.
func (m *Metrics) ContainerStarted(d time.Duration) { m.ctrStart.Observe(d.Seconds()) }

// ImagePulled implements observe.Observer.
func (m *Metrics) ImagePulled(registry string, bytes uint64, d time.Duration, err error) {
	registry = m.registryLabel(registry)
	m.pulls.WithLabelValues(registry).Inc()
	m.pullBytes.WithLabelValues(registry).Add(float64(bytes))
	if err != nil {
		m.pullFail.WithLabelValues(registry).Inc()
		return
	}
	m.pullDur.WithLabelValues(registry).Observe(d.Seconds())
}

func (m *Metrics) registryLabel(host string) string {
	m.regMu.Lock()
	defer m.regMu.Unlock()
	if m.registries[host] {
		return host
	}
	if len(m.registries) >= maxRegistries {
		return otherRegistry
	}
	m.registries[host] = true
	return host
}

// OOMKilled implements observe.Observer.
func (m *Metrics) OOMKilled() { m.oomKills.Inc() }

// ExecSyncTimedOut implements observe.Observer.
func (m *Metrics) ExecSyncTimedOut() { m.execTimeouts.Inc() }

// CNI implements observe.Observer.
func (m *Metrics) CNI(op string, d time.Duration, err error) {
	m.cniDur.WithLabelValues(op).Observe(d.Seconds())
	if err != nil {
		m.cniErrs.WithLabelValues(op).Inc()
	}
}

// Serve listens on addr and serves /metrics (and /debug/pprof/ if asked)
// until stop is called.
func (m *Metrics) Serve(addr string, withPprof bool) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("metrics server stopped", "address", addr, "error", err)
		}
	}()
	slog.Info("serving metrics", "address", l.Addr().String(), "pprof", withPprof)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

var (
	sandboxesDesc  = prometheus.NewDesc("cradle_sandboxes", "Pod sandboxes by state.", []string{"state"}, nil)
	containersDesc = prometheus.NewDesc("cradle_containers", "Containers (without infra containers) by state.", []string{"state"}, nil)
)

type stateCollector struct{ counts Counts }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sandboxesDesc
	ch <- containersDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	sb, ctr := c.counts()
	for state, n := range sb {
		ch <- prometheus.MustNewConstMetric(sandboxesDesc, prometheus.GaugeValue, float64(n), state)
	}
	for state, n := range ctr {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(n), state)
	}
}
