// Package tracing sets up OpenTelemetry tracing across the web tier, workflows and activities.
// It is off unless DOCE_TRACING names an exporter.
package tracing

import (
	"context"
	"fmt"
	"io"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
)

// Modes DOCE_TRACING takes.
const (
	Off    = "off"
	Stdout = "stdout" // one JSON span a line, on the given writer (doce: standard error)
	OTLP   = "otlp"   // OTLP over HTTP; the endpoint comes from OTEL_EXPORTER_OTLP_ENDPOINT
)

// Setup installs the global tracer provider for mode and returns the Temporal interceptor that
// carries traces from the client into workflows and activities (nil when off), and a shutdown
// that flushes spans.
func Setup(ctx context.Context, mode, service string, stdout io.Writer) (interceptor.Interceptor, func(context.Context) error, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch mode {
	case "", Off:
		return nil, func(context.Context) error { return nil }, nil
	case Stdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(stdout))
	case OTLP:
		exp, err = otlptracehttp.New(ctx)
	default:
		return nil, nil, fmt.Errorf("tracing: unknown DOCE_TRACING %q (off, stdout, otlp)", mode)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: unable to create the %s exporter: %w", mode, err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	ti, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	return ti, tp.Shutdown, nil
}
