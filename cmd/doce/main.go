// Command doce runs doce: the web tier, the Temporal worker, or both, and its maintenance tasks.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/doce-dev/doce/activities"
	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/gateway"
	"github.com/doce-dev/doce/hosts"
	"github.com/doce-dev/doce/legacy"
	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/preview"
	"github.com/doce-dev/doce/projects"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/tracing"
	"github.com/doce-dev/doce/web"
	"github.com/doce-dev/doce/worker"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

const usage = `doce provisions AI coding projects.

Usage: doce <command>

Commands:
  serve     run the web tier (pages and JSON API)
  worker    run the Temporal worker (every workflow and activity)
  dev       run both in one process, migrating the database first
  migrate   apply database migrations and exit (migrate down: roll back the last group)
  migrate-db --from sqlite:PATH --to postgres://...  copy a SQLite installation into an
            empty PostgreSQL database, checking the row counts per table
  setups    list, retry or cancel setups that need an operator (doce setups for more)
  pool      status, drain or refill the prebuilt workspaces (doce pool for more)
  hosts     list the Docker hosts, drain or undrain one (doce hosts for more)
  import-legacy PATH   import users and OpenRouter keys from a doce.dev database
  keys      show the Transit key's versions, or rotate it and rewrap (doce keys for more)
  backup PATH  write a consistent copy of the database to PATH, while doce runs
  probe URL|FILE  a health probe for images without a shell: exits 0 when URL answers 2xx,
            or when FILE (a worker's DOCE_WORKER_HEALTH_FILE) is under 30 s old
  help      show this help

Configuration comes from the environment; see README.md.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd := os.Args[1]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Print(usage)
		return
	}
	if cmd == "probe" {
		os.Exit(probe(os.Args[2:]))
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "doce:", err)
		os.Exit(2)
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "migrate":
		err = runMigrate(ctx, cfg, log, len(os.Args) > 2 && os.Args[2] == "down")
	case "migrate-db":
		err = runMigrateDB(ctx, log, os.Args[2:], os.Stdout)
	case "serve":
		err = runApp(ctx, cfg, log, true, false)
	case "worker":
		err = runApp(ctx, cfg, log, false, true)
	case "import-legacy":
		err = runImportLegacy(ctx, cfg, log, os.Args[2:])
	case "backup":
		err = runBackup(ctx, cfg, log, os.Args[2:])
	case "keys":
		err = runKeys(ctx, cfg, log, os.Args[2:])
	case "setups":
		err = runSetups(ctx, cfg, log, os.Args[2:])
	case "pool":
		err = runPool(ctx, cfg, log, os.Args[2:])
	case "hosts":
		err = runHosts(ctx, cfg, log, os.Args[2:])
	case "dev":
		if err = runMigrate(ctx, cfg, log, false); err == nil {
			err = runApp(ctx, cfg, log, true, true)
		}
	default:
		fmt.Fprintf(os.Stderr, "doce: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		log.Error("doce stopped", "command", cmd, "error", err)
		os.Exit(1)
	}
}

func newLogger(cfg *config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config.Load
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// runMigrate applies the migrations not applied yet, or with down rolls back the last group.
func runMigrate(ctx context.Context, cfg *config.Config, log *slog.Logger, down bool) error {
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	apply, verb := migrations.Up, "database migrated"
	if down {
		apply, verb = migrations.Down, "database rolled back"
	}
	names, err := apply(ctx, st.DB)
	if err != nil {
		return err
	}
	log.Info(verb, "database", store.Redact(cfg.Database()), "migrations", names)
	return nil
}

// runApp starts the web tier, the worker, or both, and stops them gracefully on a signal.
func runApp(ctx context.Context, cfg *config.Config, log *slog.Logger, serve, work bool) error {
	if err := cfg.RequireVaultAuth(); err != nil {
		return err
	}
	log.Info("starting doce", "serve", serve, "worker", work, "config", cfg.String())

	st, err := openCurrentStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	// The web tier answers a person: it gives up on Vault within seconds. The worker rides out
	// a Vault restart (about 45 s) inside a step rather than spend the step's attempts.
	transit, err := newTransit(ctx, cfg, log, 2)
	if err != nil {
		return err
	}
	if err := transit.Ensure(ctx); err != nil {
		return err
	}
	patientTransit, err := newTransit(ctx, cfg, log, 30)
	if err != nil {
		return err
	}

	ti, stopTracing, err := tracing.Setup(ctx, cfg.Tracing, "doce", os.Stderr)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = stopTracing(sctx) // flush what is buffered; an exporter gone away loses its last spans
	}()
	var interceptors []interceptor.ClientInterceptor
	if ti != nil {
		// Also a worker interceptor: workers made from this client carry traces into
		// workflows and activities.
		interceptors = append(interceptors, ti)
	}
	m := metrics.New()
	defer m.Close()
	transit.Observe, patientTransit.Observe = m.ObserveVault, m.ObserveVault
	// The worker's codec rides out a Vault restart like its activities; the web tier's answers
	// a person and gives up sooner.
	codecTransit := transit
	if work {
		codecTransit = patientTransit
	}
	tc, codec, err := dialTemporal(ctx, cfg, log, codecTransit, client.Options{
		MetricsHandler: m.TemporalHandler(),
		Interceptors:   interceptors,
	})
	if err != nil {
		return err
	}
	defer tc.Close()

	// The worker runs workspaces; the web tier reads their files (Download).
	backend, err := newBackend(cfg)
	if err != nil {
		return err
	}
	defer backend.Close()
	g, ctx := errgroup.WithContext(ctx)
	if work {
		if err := backend.Ping(ctx); err != nil {
			return err
		}
		if err := worker.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
			return err
		}
		// Before any workspace starts: the proxy they find their way out by, and the firewall.
		eg, err := newWorkspaceEgress(ctx, cfg, st, backend, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return eg.proxy.Serve(ctx, eg.listener) })
		docker := &activities.Docker{Store: st, Secrets: patientTransit, Workspace: backend, Image: cfg.OpenCodeImage, Memory: cfg.WorkspaceMemory, NanoCPUs: cfg.WorkspaceNanoCPUs, Pids: cfg.WorkspacePids, DNS: cfg.WorkspaceDNS, Env: eg.env, Ask: cfg.AgentAsk, GatewayURL: cfg.GatewayURL, Host: cfg.HostName}
		oc := &activities.OpenCode{Store: st, Secrets: patientTransit, Workspace: backend, Ask: cfg.AgentAsk, GatewayURL: cfg.GatewayURL, Host: cfg.HostName,
			Agent: &agent.Connector{Secrets: patientTransit, Host: cfg.WorkspaceHost, Locate: locate(backend), HTTP: agent.NewHTTPClient(cfg.WorkspaceProxy)}}
		acts := worker.Activities{
			Docker:      docker,
			OpenCode:    oc,
			Pool:        &activities.Pool{Docker: docker, OpenCode: oc},
			Projects:    &activities.Projects{Store: st, Metrics: m, Idle: newSetups(cfg, tc, st)},
			Connections: &activities.Connections{Store: st},
			Rewrap:      &activities.Rewrap{Store: st, Secrets: patientTransit},
			OAuth: &activities.OAuth{Store: st, Secrets: patientTransit, Metrics: m, Flows: &oauth.Settings{
				URLs: cfg.OAuthURLs, ClientIDs: cfg.OAuthClientIDs, Scopes: cfg.OAuthScopes,
				HTTP: outboundClient(ctx, cfg, log)}}, // a GitHub Enterprise host is user-given
			Hosts: &activities.Hosts{Store: st},
			Repositories: &activities.Repositories{Store: st, Secrets: patientTransit, Workspace: backend, Host: cfg.HostName,
				Policy: outboundPolicy(ctx, cfg, log), // a repository's forge is user-given
				Limits: repos.Limits{MaxBytes: cfg.ImportMaxBytes, Timeout: cfg.ImportTimeout}},
		}
		// The shared queue takes the workflows and the short database steps; the host's own
		// queue the steps that drive its Docker engine and the OpenCode servers on it.
		host, err := hosts.Register(ctx, cfg, st, backend, log)
		if err != nil {
			return err
		}
		w := worker.New(tc, cfg.TaskQueue, acts)
		hw := worker.NewHost(tc, host.TaskQueue, acts)
		for _, w := range []sdkworker.Worker{w, hw} {
			if err := w.Start(); err != nil {
				return fmt.Errorf("unable to start worker: %w", err)
			}
		}
		log.Info("worker started", "task_queue", cfg.TaskQueue, "host", host.Host, "host_task_queue", host.TaskQueue)
		if err := newSetups(cfg, tc, st).ConfigurePool(ctx, host, poolConfig(cfg)); err != nil {
			return err
		}
		g.Go(func() error { hosts.Beat(ctx, cfg, st, backend, eg.check, log); return nil })
		g.Go(func() error {
			// Ready projects without an idle watch get one, so none runs forever unnoticed.
			n, err := newSetups(cfg, tc, st).EnsureIdleWatches(ctx)
			if err != nil && ctx.Err() == nil {
				log.Warn("unable to ensure every ready workspace has an idle watch", "error", err)
			}
			log.Info("idle watches ensured", "ready_projects", n)
			return nil
		})
		if cfg.WorkerHealthFile != "" {
			g.Go(func() error { writeWorkerHealth(ctx, cfg.WorkerHealthFile, tc, backend, log); return nil })
		}
		g.Go(func() error {
			<-ctx.Done()
			// Both wait for their running activities, up to WorkerStopTimeout.
			var stops sync.WaitGroup
			for _, w := range []sdkworker.Worker{w, hw} {
				stops.Add(1)
				go func() { defer stops.Done(); w.Stop() }()
			}
			stops.Wait()
			return nil
		})
	}
	if serve {
		modelCatalog := &catalog.Catalog{}
		svc := newSetups(cfg, tc, st)
		m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "doce_setups_waiting_for_operator", Help: "Setups stopped at a failed step, waiting for retry or cancel.",
		}, func() float64 {
			n, err := svc.CountWaiting(context.Background())
			if err != nil {
				return -1 // Temporal unreachable: an alert on < 0 catches it
			}
			return float64(n)
		}))
		m.WatchPool(cfg.PoolSize, st.PoolCounts)
		// Projects are on many Docker hosts: each one's address and engine come from the host
		// its worker registered.
		registry := hosts.NewRegistry(st, backend)
		defer registry.Close()
		outboundHTTP := outboundClient(ctx, cfg, log)
		var nodes web.NodeCordoner
		if k, ok := backend.(*workspace.Kube); ok {
			nodes = k
		}
		srv := &web.Server{
			Store: st, Secrets: transit, Setups: svc, Metrics: m, Workspace: backend, Hosts: registry, Nodes: nodes, PoolImage: poolImage(cfg), AgentAsk: cfg.AgentAsk, GatewayURL: cfg.GatewayURL, Catalog: modelCatalog,
			Payloads: codec, TemporalUIURL: cfg.TemporalUIURL,
			Verifier: &providers.Verifier{HTTP: outboundHTTP, BaseURLs: cfg.ProviderBaseURLs}, Outbound: outboundHTTP,
			SessionTTL: cfg.SessionTTL, StuckAfter: cfg.StuckAfter, BaseURL: cfg.BaseURL, SecureCookies: cfg.SecureCookies(), Log: log,
			TrustedProxies: cfg.TrustedProxies,
			Egress:         web.EgressDefaults{Mode: cfg.EgressMode, Allow: cfg.EgressAllow},
			Quotas:         projects.Quotas{Projects: cfg.QuotaProjects, Running: cfg.QuotaRunning, CreatePerHour: cfg.QuotaCreatePerHour},
			Agent: &agent.Connector{Secrets: transit, Host: cfg.WorkspaceHost, HTTP: agent.NewHTTPClient(cfg.WorkspaceProxy),
				Addresses: registry.Address, Locate: locate(backend)},
		}
		if cfg.PreviewBaseURL != "" {
			key, err := preview.Key(ctx, st, transit)
			if err != nil {
				return fmt.Errorf("unable to load the preview signing key: %w", err)
			}
			if srv.Preview, err = preview.New(st, cfg.PreviewBaseURL, cfg.BaseURL, cfg.WorkspaceHost, key, web.DoceCookies()...); err != nil {
				return err
			}
			srv.Preview.Addresses, srv.Preview.Locate = registry.Address, locate(backend)
			log.Info("previews on", "url", srv.Preview.URL("<project-id>"))
		}
		h, err := srv.Handler()
		if err != nil {
			return err
		}
		gw := &gateway.Gateway{
			Store: st, Secrets: transit, BaseURLs: cfg.ProviderBaseURLs, Catalog: modelCatalog, Metrics: m, Log: log,
			LoadCatalog: func(ctx context.Context, projectID string) {
				p, err := st.Project(ctx, projectID)
				if err != nil {
					return
				}
				if oc, err := srv.Agent.Client(ctx, p); err == nil {
					modelCatalog.Load(ctx, p.OwnerUserID, oc)
				}
			},
		}
		if err := serveGateway(ctx, g, cfg, log, gw); err != nil {
			return err
		}
		if ti != nil {
			h = otelhttp.NewHandler(h, "doce", otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
				return r.Method + " " + r.URL.Path
			}))
		}
		hs := &http.Server{Addr: cfg.HTTPAddr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return fmt.Errorf("unable to listen on %s: %w", cfg.HTTPAddr, err)
		}
		log.Info("web listening", "url", cfg.BaseURL)
		serveUntilDone(ctx, g, hs, ln, nil)
	}
	if cfg.MetricsAddr != "" {
		// Metrics have an address of their own, never the web port: they name routes, hosts and
		// counts an operator's scraper may see and the internet may not.
		ms := &http.Server{Addr: cfg.MetricsAddr, Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
		ln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("unable to listen on DOCE_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		serveUntilDone(ctx, g, ms, ln, nil)
		log.Info("metrics listening", "addr", cfg.MetricsAddr)
	}
	return g.Wait()
}

// newBackend opens the workspace backend DOCE_WORKSPACE_BACKEND names.
func newBackend(cfg *config.Config) (workspace.Backend, error) {
	if cfg.WorkspaceBackend == workspace.BackendKubernetes {
		clients := make([]string, 0, len(cfg.WorkspaceClients))
		for _, c := range cfg.WorkspaceClients {
			clients = append(clients, c.String())
		}
		return workspace.NewKube(workspace.KubeConfig{Kubeconfig: cfg.Kubeconfig, Namespace: cfg.KubeNamespace, DoceNamespace: cfg.KubeDoceNS,
			StorageClass: cfg.KubeStorageClass, StorageBytes: cfg.KubeStorageBytes, ChownVolume: cfg.KubeChownVolume, Clients: clients, Served: kubeServed(cfg)})
	}
	return workspace.NewManager(cfg.WorkspaceHost)
}

// locate is where the Kubernetes backend's workspaces are reached (their pods' IPs); nil for
// Docker's, which are reached at their published ports.
func locate(b workspace.Backend) func(context.Context, string) (string, error) {
	if k, ok := b.(*workspace.Kube); ok {
		return k.Address
	}
	return nil
}

func poolConfig(cfg *config.Config) workflows.PoolConfig {
	return workflows.PoolConfig{Size: cfg.PoolSize, Image: cfg.OpenCodeImage, MaxAge: cfg.PoolMaxAge}
}

// poolImage is the image new projects claim prebuilt workspaces of; none without a pool.
func poolImage(cfg *config.Config) string {
	if cfg.PoolSize == 0 {
		return ""
	}
	return cfg.OpenCodeImage
}

func newSetups(cfg *config.Config, tc client.Client, st *store.Store) *setups.Service {
	return &setups.Service{
		Temporal: tc, Store: st, TaskQueue: cfg.TaskQueue, Namespace: cfg.TemporalNamespace,
		UIURL: cfg.TemporalUIURL, OperatorWait: cfg.OperatorWait, WorkspaceIdle: cfg.WorkspaceIdle,
	}
}

// outboundClient is the client for user-given URLs, under the outbound policy. Its
// host.docker.internal is the address workspaces reach under that name: DOCE_HOST_GATEWAY, or
// the Docker bridge's gateway when the engine answers (a web tier without Docker access and
// without DOCE_HOST_GATEWAY resolves the name through DNS, where it usually does not exist).
func outboundClient(ctx context.Context, cfg *config.Config, log *slog.Logger) *http.Client {
	return outboundPolicy(ctx, cfg, log).Client(30 * time.Second)
}

// outboundPolicy is the outbound policy with host.docker.internal standing for hostGateway.
func outboundPolicy(ctx context.Context, cfg *config.Config, log *slog.Logger) *outbound.Policy {
	policy := *cfg.Outbound
	policy.HostGateway = hostGateway(ctx, cfg, log)
	return &policy
}

// hostGateway is the address workspaces reach as host.docker.internal: DOCE_HOST_GATEWAY, or
// the Docker bridge's gateway when the engine answers; invalid when neither says.
func hostGateway(ctx context.Context, cfg *config.Config, log *slog.Logger) netip.Addr {
	if cfg.HostGateway.IsValid() || cfg.WorkspaceBackend != workspace.BackendDocker {
		return cfg.HostGateway
	}
	ws, err := workspace.NewManager(cfg.WorkspaceHost)
	if err != nil {
		return netip.Addr{}
	}
	defer ws.Close()
	gctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	gw, err := ws.HostGateway(gctx)
	if err != nil {
		log.Info("host.docker.internal is unknown here; set DOCE_HOST_GATEWAY", "error", err)
	}
	return gw
}

// serveGateway serves the LLM gateway on its own listener, DOCE_GATEWAY_ADDR, until ctx ends.
func serveGateway(ctx context.Context, g *errgroup.Group, cfg *config.Config, log *slog.Logger, gw *gateway.Gateway) error {
	policy := outboundPolicy(ctx, cfg, log)
	addr, err := cfg.GatewayListenAddr(policy.HostGateway)
	if err != nil {
		return err
	}
	t := policy.Transport()
	// A model may think for minutes before its first byte; the agent's own timeout governs.
	t.ResponseHeaderTimeout = 10 * time.Minute
	gw.Transport = t
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("unable to listen for the LLM gateway on %s (DOCE_GATEWAY_ADDR): %w", addr, err)
	}
	// No write timeout: answers stream for as long as the model writes.
	hs := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("LLM gateway listening", "addr", ln.Addr().String(), "url", cfg.GatewayURL)
	serveUntilDone(ctx, g, hs, ln, gw.Wait)
	return nil
}

// serveUntilDone serves hs on ln in g until ctx ends, then shuts it down, letting requests in
// flight finish for up to 20 s, and runs after (if any) once it has.
func serveUntilDone(ctx context.Context, g *errgroup.Group, hs *http.Server, ln net.Listener, after func()) {
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := hs.Shutdown(sctx)
		if after != nil {
			after()
		}
		return err
	})
}

// runImportLegacy is `doce import-legacy PATH`.
func runImportLegacy(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) != 1 {
		return errors.New("import-legacy: give the path of the doce.dev database, e.g. doce import-legacy ./doce.dev/data/db.sqlite")
	}
	if _, err := os.Stat(args[0]); err != nil {
		return fmt.Errorf("import-legacy: %w", err)
	}
	if err := cfg.RequireVaultAuth(); err != nil {
		return err
	}
	transit, err := newTransit(ctx, cfg, log, 2)
	if err != nil {
		return err
	}
	if err := transit.Ensure(ctx); err != nil {
		return err
	}
	st, err := openCurrentStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := (&legacy.Importer{Store: st, Secrets: transit}).Import(ctx, args[0])
	if rep != nil {
		fmt.Printf("users imported: %d\n", rep.UsersImported)
		for _, s := range rep.UsersSkipped {
			fmt.Printf("  user %s: %s\n", s.Who, s.Reason)
		}
		fmt.Printf("OpenRouter keys migrated: %d\n", rep.KeysMigrated)
		for _, s := range rep.KeysSkipped {
			fmt.Printf("  key of %s skipped: %s\n", s.Who, s.Reason)
		}
		fmt.Printf("doce.dev projects left where they are: %d\n", rep.LegacyProjects)
	}
	return err
}

// workerHealthEvery is how often a worker rewrites its health file; probe accepts a file up to
// three intervals old.
const workerHealthEvery = 10 * time.Second

// writeWorkerHealth rewrites path while the worker's Temporal and Docker answer, and removes it
// when either does not, until ctx ends.
func writeWorkerHealth(ctx context.Context, path string, tc client.Client, ws workspace.Backend, log *slog.Logger) {
	defer os.Remove(path)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tc.CheckHealth(cctx, &client.CheckHealthRequest{})
		if err == nil {
			err = ws.Ping(cctx)
		}
		cancel()
		if err == nil {
			err = os.WriteFile(path, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
		} else {
			os.Remove(path)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("worker unhealthy", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(workerHealthEvery):
		}
	}
}

// probe GETs a URL and exits 0 on a 2xx answer: container healthchecks in an image without a
// shell or curl use it.
func probe(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: doce probe URL|FILE")
		return 2
	}
	if !strings.HasPrefix(args[0], "http://") && !strings.HasPrefix(args[0], "https://") {
		// A worker's health file (DOCE_WORKER_HEALTH_FILE): fresh means healthy.
		fi, err := os.Stat(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, "doce probe: no health file:", err)
			return 1
		}
		if age := time.Since(fi.ModTime()); age > 3*workerHealthEvery {
			fmt.Fprintf(os.Stderr, "doce probe: health file %s old\n", age.Round(time.Second))
			return 1
		}
		return 0
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "doce probe:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintln(os.Stderr, "doce probe:", resp.Status)
		return 1
	}
	return 0
}

// newTransit connects to Vault's Transit engine with a token, or with AppRole when configured;
// retries says how long a call waits out an unreachable Vault (see secrets.NewTransit).
func newTransit(ctx context.Context, cfg *config.Config, log *slog.Logger, retries int) (*secrets.Transit, error) {
	if cfg.UsesAppRole() {
		return secrets.NewTransitAppRole(ctx, cfg.VaultAddr, cfg.TransitMount, cfg.TransitKey, retries, secrets.AppRole{
			RoleIDFile: cfg.VaultRoleIDFile, SecretIDFile: cfg.VaultSecretIDFile, Wrapped: cfg.VaultSecretWrapped, MountPath: cfg.VaultAppRoleMount,
		}, log)
	}
	return secrets.NewTransit(cfg.VaultAddr, cfg.VaultToken, cfg.TransitMount, cfg.TransitKey, retries)
}

// runBackup is `doce backup PATH`.
func runBackup(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) != 1 {
		return errors.New("backup: give the file to write, e.g. doce backup /backups/doce-$(date +%F).db")
	}
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Backup(ctx, args[0]); err != nil {
		return err
	}
	log.Info("database backed up", "from", cfg.DBPath, "to", args[0])
	return nil
}

// openStore opens the database the configuration names: PostgreSQL at DOCE_DATABASE_URL, or
// the SQLite file DOCE_DB_PATH.
func openStore(cfg *config.Config) (*store.Store, error) {
	return store.Open(cfg.Database(), store.MaxConns(cfg.DatabaseMaxConns))
}

// openCurrentStore opens the database and refuses one whose migrations are not all applied.
func openCurrentStore(ctx context.Context, cfg *config.Config) (*store.Store, error) {
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	if err := migrations.CheckCurrent(ctx, st.DB); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}
