// Package metrics serves cradle's Prometheus metrics, and optionally
// net/http/pprof, on an opt-in HTTP address: the CRI operations with their
// gRPC codes and latencies, pods and containers by state, and the Go
// runtime and process collectors.
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
	"time"

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
}

// New registers the collectors; counts may be nil.
func New(counts Counts) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cradle", Subsystem: "cri", Name: "operations_total",
			Help: "CRI calls by method and gRPC status code.",
		}, []string{"method", "code"}),
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cradle", Subsystem: "cri", Name: "operation_duration_seconds",
			Help:    "Latency of CRI calls by method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
	}
	m.reg.MustRegister(m.ops, m.dur,
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
