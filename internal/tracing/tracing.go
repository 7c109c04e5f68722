// Package tracing exports OpenTelemetry spans over OTLP/gRPC: one span per
// CRI call, from the gRPC stats handler, and the spans of its steps that
// the domain packages start through observe.StartSpan.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cradle-runtime/cradle/internal/config"
	"github.com/cradle-runtime/cradle/internal/version"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Tracing is an installed exporter.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Start installs the exporter as the process's tracer provider. The
// exporter connects lazily: a collector that is down loses spans, it does
// not stop the daemon.
func Start(cfg config.TracingConfig) (*Tracing, error) {
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	// Set either way, so the OTEL_EXPORTER_OTLP_* environment cannot
	// override the config.
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	} else {
		opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(nil)))
	}
	exp, err := otlptracegrpc.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", cfg.Endpoint, err)
	}
	ratio := float64(cfg.SamplingRatePerMillion) / 1e6
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", cfg.ServiceName),
			attribute.String("service.version", version.Version),
		)),
		// A caller's sampled trace (the kubelet's) is followed either way.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		slog.Warn("tracing", "endpoint", cfg.Endpoint, "error", err)
	}))
	slog.Info("exporting traces", "endpoint", cfg.Endpoint, "insecure", cfg.Insecure, "sampling_rate_per_million", cfg.SamplingRatePerMillion)
	return &Tracing{tp: tp}, nil
}

// ServerOption gives every CRI call a server span, continuing the trace
// the caller sent in its metadata.
func (t *Tracing) ServerOption() grpc.ServerOption {
	return grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.tp)))
}

// Shutdown flushes the spans not yet exported, waiting at most timeout.
func (t *Tracing) Shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := t.tp.Shutdown(ctx); err != nil {
		slog.Warn("tracing: flush on shutdown", "error", err)
	}
}
