// Package metrics holds doce's Prometheus metrics and hands the Temporal SDK a handler that
// reports into the same registry, so one /metrics shows both.
package metrics

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// Metrics is doce's registry and the metrics it records.
type Metrics struct {
	Registry *prometheus.Registry

	// SetupsStarted counts setups started, by provider.
	SetupsStarted *prometheus.CounterVec
	// SetupsEnded counts setups reaching their end: ready or cancelled. A setup that fails,
	// is retried and gets ready counts once, as ready.
	SetupsEnded *prometheus.CounterVec
	// SetupStepFailures counts steps that failed after their retries, leaving their setup
	// waiting for an operator, by step.
	SetupStepFailures *prometheus.CounterVec
	// HTTPDuration is the web tier's latency by route and status.
	HTTPDuration *prometheus.HistogramVec
	// VaultDuration is Vault Transit call latency by operation and outcome.
	VaultDuration *prometheus.HistogramVec
	// OAuthRefreshes counts token refreshes by provider and outcome: refreshed, revoked (the
	// connection is now expired) or error (retried).
	OAuthRefreshes *prometheus.CounterVec
	// OAuthLogins counts finished device sign-ins by provider and outcome: connected, denied,
	// expired or refused.
	OAuthLogins *prometheus.CounterVec
	// GatewayRequests counts requests the LLM gateway forwarded or refused, by provider and
	// HTTP status; GatewayTokens the tokens providers counted, by provider and kind (input,
	// output, cache); GatewayCost what they cost at the catalog's prices, by provider.
	GatewayRequests *prometheus.CounterVec
	GatewayTokens   *prometheus.CounterVec
	GatewayCost     *prometheus.CounterVec
	// GatewayOverhead is the gateway's own time per request, from its arrival to the request
	// leaving for the provider: token, budget, key.
	GatewayOverhead prometheus.Histogram

	temporalScope io.Closer
}

// New makes the registry with the Go runtime's and the process's own metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{
		Registry: reg,
		SetupsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_setups_started_total", Help: "Project setups started.",
		}, []string{"provider"}),
		SetupsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_setups_ended_total", Help: "Project setups reaching their end: ready or cancelled.",
		}, []string{"outcome"}),
		SetupStepFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_setup_step_failures_total", Help: "Setup steps that failed after their retries; the setup then waits for an operator.",
		}, []string{"step"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "doce_http_request_duration_seconds", Help: "Web tier request latency.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route", "status"}),
		VaultDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "doce_vault_request_duration_seconds", Help: "Vault Transit call latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30},
		}, []string{"operation", "outcome"}),
		OAuthRefreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_oauth_refreshes_total", Help: "OAuth token refreshes: refreshed, revoked (connection expired), error (retried).",
		}, []string{"provider", "outcome"}),
		OAuthLogins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_oauth_logins_total", Help: "Device sign-ins finished: connected, denied, expired, refused.",
		}, []string{"provider", "outcome"}),
		GatewayRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_gateway_requests_total", Help: "Requests through the LLM gateway, by provider and HTTP status.",
		}, []string{"provider", "status"}),
		GatewayTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_gateway_tokens_total", Help: "Tokens providers counted for requests through the LLM gateway: input, output, cache.",
		}, []string{"provider", "kind"}),
		GatewayCost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "doce_gateway_cost_dollars_total", Help: "What requests through the LLM gateway cost, at the model catalog's prices.",
		}, []string{"provider"}),
		GatewayOverhead: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "doce_gateway_overhead_seconds", Help: "The LLM gateway's own time per request, before it leaves for the provider.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .025, .05, .1},
		}),
	}
	reg.MustRegister(m.SetupsStarted, m.SetupsEnded, m.SetupStepFailures, m.HTTPDuration, m.VaultDuration, m.OAuthRefreshes, m.OAuthLogins,
		m.GatewayRequests, m.GatewayTokens, m.GatewayCost, m.GatewayOverhead)
	return m
}

// WatchPool makes /metrics report the workspace pool: its target size (doce_workspace_pool_size)
// and its workspaces by state (doce_workspace_pool{state}), read by count at each scrape so the
// numbers are never older than the scrape.
func (m *Metrics) WatchPool(size int, count func(context.Context) (map[string]int, error)) {
	m.Registry.MustRegister(&poolCollector{size: size, count: count})
}

var (
	poolSizeDesc  = prometheus.NewDesc("doce_workspace_pool_size", "Prebuilt workspaces the pool keeps.", nil, nil)
	poolStateDesc = prometheus.NewDesc("doce_workspace_pool", "Prebuilt workspaces by state: free, starting, failed.", []string{"state"}, nil)
)

type poolCollector struct {
	size  int
	count func(context.Context) (map[string]int, error)
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- poolSizeDesc; ch <- poolStateDesc }

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(poolSizeDesc, prometheus.GaugeValue, float64(c.size))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(poolStateDesc, err)
		return
	}
	for _, state := range []string{"free", "starting", "failed"} {
		ch <- prometheus.MustNewConstMetric(poolStateDesc, prometheus.GaugeValue, float64(n[state]), state)
	}
}

// TemporalHandler reports the Temporal SDK's own metrics (requests, polls, workflow and
// activity latencies per type) into the registry.
func (m *Metrics) TemporalHandler() client.MetricsHandler {
	reporter := tallyprom.NewReporter(tallyprom.Options{Registerer: m.Registry})
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	m.temporalScope = closer
	return sdktally.NewMetricsHandler(scope)
}

// ObserveVault records one Vault call.
func (m *Metrics) ObserveVault(op string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.VaultDuration.WithLabelValues(op, outcome).Observe(d.Seconds())
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Close flushes the Temporal scope.
func (m *Metrics) Close() error {
	if m.temporalScope != nil {
		return m.temporalScope.Close()
	}
	return nil
}
