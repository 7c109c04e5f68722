package observe

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracer comes from the global provider, a no-op one until the daemon
// turns tracing on, so a step's span costs next to nothing when it is off.
var tracer = otel.Tracer("github.com/cradle-runtime/cradle")

// StartSpan starts a span for one step of a CRI call, a child of the span
// in ctx (the call's, which the gRPC stats handler starts).
func StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// EndSpan ends span, marking it failed with err if there is one.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
