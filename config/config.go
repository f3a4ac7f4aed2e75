// Package config reads doce's configuration from the environment: DOCE_* variables plus the
// standard TEMPORAL_*, VAULT_* and DOCKER_HOST (the latter read by the Docker client itself).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/net/publicsuffix"

	"github.com/doce-dev/doce/egress"
	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/workflows"
)

// DefaultOpenCodeImage is the workspace image doce runs when DOCE_OPENCODE_IMAGE is not set.
const DefaultOpenCodeImage = "doce/workspace:current"

// Config is everything doce needs to start.
type Config struct {
	HTTPAddr string // DOCE_HTTP_ADDR
	BaseURL  string // DOCE_BASE_URL: how users reach the app; decides Secure cookies
	DataDir  string // DOCE_DATA_DIR
	DBPath   string // DOCE_DB_PATH: the SQLite file, when DOCE_DATABASE_URL is not set
	// DOCE_DATABASE_URL (postgres://...): doce's data on PostgreSQL instead of SQLite.
	DatabaseURL string
	// DOCE_DATABASE_MAX_CONNS: connections this process may hold (0: the default, 10 on
	// PostgreSQL, 8 on SQLite).
	DatabaseMaxConns int
	SessionTTL       time.Duration // DOCE_SESSION_TTL
	// PreviewBaseURL (DOCE_PREVIEW_BASE_URL) is the origin under which each project's preview
	// gets a host of its own, <project-id>.<host>: a different site from doce's, so the
	// preview's scripts never act on doce with the user's session. Empty: previews are off.
	PreviewBaseURL string
	LogLevel       string // DOCE_LOG_LEVEL
	LogFormat      string // DOCE_LOG_FORMAT: text | json

	TemporalAddress   string        // TEMPORAL_ADDRESS
	TemporalNamespace string        // TEMPORAL_NAMESPACE
	TemporalUIURL     string        // DOCE_TEMPORAL_UI_URL
	TaskQueue         string        // DOCE_TASK_QUEUE
	OperatorWait      time.Duration // DOCE_SETUP_OPERATOR_WAIT: how long a failed setup waits for retry or cancel
	StuckAfter        time.Duration // DOCE_SETUP_STUCK_AFTER: a setup running longer is listed for operators

	VaultAddr  string // VAULT_ADDR
	VaultToken string // VAULT_TOKEN
	// AppRole sign-in (production): files holding the role id and the secret id (wrapped when
	// VAULT_SECRET_ID_WRAPPED=true). When set, VAULT_TOKEN is not needed.
	VaultRoleIDFile    string // VAULT_ROLE_ID_FILE
	VaultSecretIDFile  string // VAULT_SECRET_ID_FILE
	VaultSecretWrapped bool   // VAULT_SECRET_ID_WRAPPED
	VaultAppRoleMount  string // DOCE_VAULT_APPROLE_MOUNT
	TransitMount       string // DOCE_VAULT_TRANSIT_MOUNT
	TransitKey         string // DOCE_VAULT_TRANSIT_KEY
	// DOCE_VAULT_PAYLOAD_KEY: the Transit key whose data keys encrypt Temporal payloads; apart
	// from TransitKey because a rewrap retires that key's old versions, which recorded
	// histories still need.
	PayloadKey string

	// WorkspaceBackend is where workspaces run (DOCE_WORKSPACE_BACKEND): docker or kubernetes.
	WorkspaceBackend string
	// The Kubernetes backend's cluster: Kubeconfig (DOCE_KUBECONFIG; empty: in-cluster), the
	// namespace of every workspace (DOCE_KUBE_NAMESPACE), the one doce's own pods run in
	// (DOCE_KUBE_DOCE_NAMESPACE), their volumes' storage class
	// (DOCE_KUBE_STORAGE_CLASS; empty: the default) and size (DOCE_KUBE_STORAGE_SIZE), and
	// whether a volume is handed to the agent by a chown-only init container
	// (DOCE_KUBE_CHOWN_VOLUME, for storage that ignores fsGroup).
	Kubeconfig       string
	KubeNamespace    string
	KubeDoceNS       string
	KubeStorageClass string
	KubeStorageBytes int64
	KubeChownVolume  bool
	OpenCodeImage    string        // DOCE_OPENCODE_IMAGE
	WorkspaceMemory  int64         // DOCE_WORKSPACE_MEMORY, e.g. 1g
	WorkspacePids    int64         // DOCE_WORKSPACE_PIDS: processes and threads a workspace may run
	WorkspaceHost    string        // DOCE_WORKSPACE_HOST: where published OpenCode ports are bound and reached
	WorkspaceProxy   string        // DOCE_WORKSPACE_PROXY: HTTP proxy the worker reaches OpenCode servers through
	WorkspaceDNS     []string      // DOCE_WORKSPACE_DNS: comma-separated name server IPs for workspaces (default: Docker's)
	WorkspaceIdle    time.Duration // DOCE_WORKSPACE_IDLE: a workspace nobody uses for this long is stopped
	// A repository a project is made from is cloned on the worker within ImportMaxBytes
	// (DOCE_IMPORT_MAX_SIZE, e.g. 1g, .git included) and ImportTimeout (DOCE_IMPORT_TIMEOUT).
	ImportMaxBytes int64
	ImportTimeout  time.Duration
	// The Docker host a worker serves (its DOCKER_HOST): HostName (DOCE_HOST_NAME) names it and
	// its task queue, HostMaxWorkspaces (DOCE_HOST_MAX_WORKSPACES) and HostMemory
	// (DOCE_HOST_MEMORY, at DOCE_WORKSPACE_MEMORY a workspace) say what it holds (0: no limit),
	// and HostHeartbeat (DOCE_HOST_HEARTBEAT) is how often it says it is there.
	HostName          string
	HostMaxWorkspaces int
	HostMemory        int64
	HostHeartbeat     time.Duration
	// DOCE_WORKSPACE_POOL: how many prebuilt workspaces to keep ready for new projects on each
	// host (0: none).
	PoolSize int
	// DOCE_WORKSPACE_POOL_MAX_AGE: a prebuilt workspace older than this is replaced.
	PoolMaxAge time.Duration
	// DOCE_AGENT_ASK: comma-separated OpenCode permissions (bash, edit, webfetch, ...) the agent
	// asks its owner for on the project page before using; default: none, it goes ahead.
	AgentAsk    []string
	MetricsAddr string // DOCE_METRICS_ADDR: where `doce worker` alone serves /metrics (off when empty)
	// DOCE_WORKER_HEALTH_FILE: a file `doce worker` rewrites every 10 s while Temporal and Docker
	// answer, for `doce probe FILE` (a healthcheck for workers, which serve no port).
	WorkerHealthFile string
	Tracing          string // DOCE_TRACING: off | stdout | otlp (OTEL_EXPORTER_OTLP_* configure otlp)
	// DOCE_PROVIDER_BASE_URLS ("openai=https://gw/v1,..."): where key checks reach providers.
	ProviderBaseURLs map[string]string
	// Where OAuth sign-ins go, per provider (defaults: the values OpenCode uses):
	// DOCE_OAUTH_URLS ("github-copilot=https://github.com,openai=https://auth.openai.com"),
	// DOCE_OAUTH_CLIENT_IDS ("github-copilot=Iv1...") and DOCE_OAUTH_SCOPES ("openai=openid email").
	OAuthURLs      map[string]string
	OAuthClientIDs map[string]string
	OAuthScopes    map[string]string
	// Outbound is the policy for requests to user-given URLs (key checks, well-known documents):
	// special-purpose addresses are refused except those DOCE_ALLOWED_PRIVATE_HOSTS lists (IPs,
	// CIDR ranges, host names) and the hosts of DOCE_PROVIDER_BASE_URLS and DOCE_OAUTH_URLS.
	Outbound *outbound.Policy
	// HostGateway (DOCE_HOST_GATEWAY) is the address host.docker.internal stands for when doce's
	// server checks a URL; invalid when unset (the commands then ask Docker).
	HostGateway netip.Addr
	// TrustedProxies (DOCE_TRUSTED_PROXIES): addresses whose X-Forwarded-For is believed.
	TrustedProxies []string

	// What workspaces reach (package egress).
	// WorkspaceServed (DOCE_WORKSPACE_SERVED, host:port,...) are the endpoints doce serves to
	// workspaces, the only ones besides the egress proxy they reach directly (an LLM gateway,
	// a model served on the Docker host as host.docker.internal:11434).
	WorkspaceServed []egress.Endpoint
	// EgressProxyPort (DOCE_EGRESS_PROXY_PORT) is where each worker's egress proxy listens, on
	// the address workspaces know as host.docker.internal. It is in every workspace's
	// environment: keep it fixed.
	EgressProxyPort int
	// KubeEgressProxy (DOCE_KUBE_EGRESS_PROXY, host:port) is where the Kubernetes backend's
	// workspaces find the egress proxy: by default the Service doce-egress in doce's namespace
	// (deploy/kubernetes), on DOCE_EGRESS_PROXY_PORT. An IP address (a doce run outside the
	// cluster) is where the worker's proxy listens, and the one address workspaces reach it at.
	KubeEgressProxy string
	// EgressMode (DOCE_WORKSPACE_EGRESS) is the egress of projects that choose none, and
	// EgressAllow (DOCE_WORKSPACE_EGRESS_ALLOW) hosts every allow-list project reaches.
	EgressMode  egress.Mode
	EgressAllow []string
	// WorkspacePrivate (DOCE_WORKSPACE_PRIVATE_HOSTS) lists the private addresses, ranges and
	// host names the egress proxy may reach for workspaces (an internal package mirror).
	WorkspacePrivate *outbound.Policy
	// WorkspaceClients (DOCE_WORKSPACE_CLIENTS) are the other machines (doce's web tier on a
	// multi-host install) that may reach published workspace ports; the host itself always may.
	WorkspaceClients []netip.Prefix
	// Quotas, per user (0: no limit): projects (DOCE_QUOTA_PROJECTS), workspaces running at once
	// (DOCE_QUOTA_RUNNING) and projects created in an hour (DOCE_QUOTA_CREATE_PER_HOUR); and
	// the CPUs each workspace may use (DOCE_WORKSPACE_CPUS, e.g. 1.5).
	QuotaProjects      int
	QuotaRunning       int
	QuotaCreatePerHour int
	WorkspaceNanoCPUs  int64
	// WorkspaceFirewall (DOCE_WORKSPACE_FIREWALL): iptables (the worker keeps the rules) or
	// none (the operator keeps equivalent ones; see docs/egress.md).
	WorkspaceFirewall string
	// GatewayAddr (DOCE_GATEWAY_ADDR) is where `doce serve` serves the LLM gateway to
	// workspaces, host:port; the host GatewayHostGateway (the default, host-gateway:8081) is the
	// Docker bridge's gateway, the address workspaces reach as host.docker.internal. It is the
	// one place the gateway's address is named: a workspace egress policy allows exactly it.
	GatewayAddr string
	// GatewayURL (DOCE_GATEWAY_URL) is the gateway as workspaces reach it; by default
	// http://host.docker.internal:<the port of GatewayAddr>.
	GatewayURL string
}

// GatewayHostGateway in DOCE_GATEWAY_ADDR stands for the Docker bridge's gateway address, as
// host-gateway does in Docker's --add-host.
const GatewayHostGateway = "host-gateway"

// Load reads the environment and validates it, naming every variable that is wrong.
func Load() (*Config, error) {
	return load(os.Getenv)
}

func load(getenv func(string) string) (*Config, error) {
	var errs []error
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	c := &Config{
		HTTPAddr:          get("DOCE_HTTP_ADDR", "127.0.0.1:8080"),
		DataDir:           get("DOCE_DATA_DIR", "data"),
		LogLevel:          get("DOCE_LOG_LEVEL", "info"),
		LogFormat:         get("DOCE_LOG_FORMAT", "text"),
		TemporalAddress:   get("TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		TemporalNamespace: get("TEMPORAL_NAMESPACE", "default"),
		TemporalUIURL:     strings.TrimRight(get("DOCE_TEMPORAL_UI_URL", "http://127.0.0.1:8233"), "/"),
		TaskQueue:         get("DOCE_TASK_QUEUE", "doce"),
		VaultAddr:         get("VAULT_ADDR", "http://127.0.0.1:8200"),
		VaultToken:        get("VAULT_TOKEN", ""),
		TransitMount:      get("DOCE_VAULT_TRANSIT_MOUNT", "transit"),
		TransitKey:        get("DOCE_VAULT_TRANSIT_KEY", "doce-credentials"),
		PayloadKey:        get("DOCE_VAULT_PAYLOAD_KEY", "doce-payloads"),
		// The alias scripts/workspace-image.sh moves to each build (WORKSPACE_IMAGE_ALIAS in
		// scripts/lib.sh); make run and make test pass the build's own tag instead.
		OpenCodeImage: get("DOCE_OPENCODE_IMAGE", DefaultOpenCodeImage),
		WorkspaceHost: get("DOCE_WORKSPACE_HOST", "127.0.0.1"),
	}
	c.DBPath = get("DOCE_DB_PATH", filepath.Join(c.DataDir, "doce.db"))
	c.DatabaseURL = get("DOCE_DATABASE_URL", "")
	if c.DatabaseURL != "" {
		// The message never quotes the URL: it holds the database password.
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			errs = append(errs, errors.New("DOCE_DATABASE_URL is not a postgres:// URL (postgres://user:password@host:5432/dbname?sslmode=...)"))
		}
	}
	if v := get("DOCE_DATABASE_MAX_CONNS", ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			errs = append(errs, fmt.Errorf("DOCE_DATABASE_MAX_CONNS=%q is not a number from 1 to 1000", v))
		}
		c.DatabaseMaxConns = n
	}

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_HTTP_ADDR=%q is not host:port", c.HTTPAddr))
	}
	c.BaseURL = strings.TrimRight(get("DOCE_BASE_URL", "http://"+c.HTTPAddr), "/")
	var err error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("DOCE_BASE_URL=%q is not an http(s) URL", c.BaseURL))
	}
	c.PreviewBaseURL, err = previewBaseURL(get("DOCE_PREVIEW_BASE_URL", ""), c.BaseURL)
	if err != nil {
		errs = append(errs, err)
	}
	ttl, err := time.ParseDuration(get("DOCE_SESSION_TTL", "168h"))
	if err != nil || ttl < time.Minute {
		errs = append(errs, fmt.Errorf("DOCE_SESSION_TTL=%q is not a duration of at least 1m (e.g. 168h)", getenv("DOCE_SESSION_TTL")))
	}
	c.SessionTTL = ttl
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("DOCE_LOG_LEVEL=%q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("DOCE_LOG_FORMAT=%q is not text or json", c.LogFormat))
	}
	if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
		errs = append(errs, fmt.Errorf("TEMPORAL_ADDRESS=%q is not host:port", c.TemporalAddress))
	}
	if u, err := url.Parse(c.VaultAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("VAULT_ADDR=%q is not an http(s) URL", c.VaultAddr))
	}
	c.OperatorWait = duration(get, "DOCE_SETUP_OPERATOR_WAIT", workflows.DefaultOperatorWait.String(), time.Minute, &errs)
	c.StuckAfter = duration(get, "DOCE_SETUP_STUCK_AFTER", "15m", time.Second, &errs)
	c.WorkspaceIdle = duration(get, "DOCE_WORKSPACE_IDLE", workflows.DefaultWorkspaceIdle.String(), time.Second, &errs)
	c.ImportTimeout = duration(get, "DOCE_IMPORT_TIMEOUT", "10m", time.Second, &errs)
	if c.ImportTimeout > 12*time.Minute {
		errs = append(errs, fmt.Errorf("DOCE_IMPORT_TIMEOUT=%q is longer than the import step allows (12m)", getenv("DOCE_IMPORT_TIMEOUT")))
	}
	if c.ImportMaxBytes, err = units.RAMInBytes(get("DOCE_IMPORT_MAX_SIZE", "1g")); err != nil || c.ImportMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("DOCE_IMPORT_MAX_SIZE=%q is not a size of at least 1m", getenv("DOCE_IMPORT_MAX_SIZE")))
	}
	mem, err := units.RAMInBytes(get("DOCE_WORKSPACE_MEMORY", "1g"))
	if err != nil || mem < 256<<20 {
		errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_MEMORY=%q is not a size of at least 256m (OpenCode needs ~320 MB idle)", getenv("DOCE_WORKSPACE_MEMORY")))
	}
	c.WorkspaceMemory = mem
	// OpenCode alone runs ~30 threads, a Node dev server with a test runner a few hundred; a
	// fork bomb stops at the limit.
	pids, err := strconv.ParseInt(get("DOCE_WORKSPACE_PIDS", "1024"), 10, 64)
	if err != nil || pids < 128 {
		errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_PIDS=%q is not a number of at least 128 (OpenCode alone runs ~30 threads)", getenv("DOCE_WORKSPACE_PIDS")))
	}
	c.WorkspacePids = pids
	pool, err := strconv.Atoi(get("DOCE_WORKSPACE_POOL", "1"))
	if err != nil || pool < 0 || pool > 100 {
		errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_POOL=%q is not a number of workspaces from 0 to 100", getenv("DOCE_WORKSPACE_POOL")))
	}
	c.PoolSize = pool
	c.HostName = get("DOCE_HOST_NAME", "local")
	if !hostName.MatchString(c.HostName) {
		errs = append(errs, fmt.Errorf("DOCE_HOST_NAME=%q is not a host name of lower-case letters, digits and inner dashes, at most 63", c.HostName))
	}
	if c.HostMaxWorkspaces, err = strconv.Atoi(get("DOCE_HOST_MAX_WORKSPACES", "0")); err != nil || c.HostMaxWorkspaces < 0 {
		errs = append(errs, fmt.Errorf("DOCE_HOST_MAX_WORKSPACES=%q is not a number of workspaces (0: no limit)", getenv("DOCE_HOST_MAX_WORKSPACES")))
	}
	if v := get("DOCE_HOST_MEMORY", "0"); v != "0" {
		if c.HostMemory, err = units.RAMInBytes(v); err != nil || c.HostMemory < c.WorkspaceMemory {
			errs = append(errs, fmt.Errorf("DOCE_HOST_MEMORY=%q is not a size of at least one workspace's DOCE_WORKSPACE_MEMORY (e.g. 64g; 0: no limit)", v))
		}
	}
	c.HostHeartbeat = duration(get, "DOCE_HOST_HEARTBEAT", "10s", time.Second, &errs)
	c.PoolMaxAge = duration(get, "DOCE_WORKSPACE_POOL_MAX_AGE", "24h", time.Minute, &errs)
	switch c.WorkspaceBackend = get("DOCE_WORKSPACE_BACKEND", "docker"); c.WorkspaceBackend {
	case "docker", "kubernetes":
	default:
		errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_BACKEND=%q is not a workspace backend (docker or kubernetes)", c.WorkspaceBackend))
	}
	c.Kubeconfig, c.KubeStorageClass = get("DOCE_KUBECONFIG", ""), get("DOCE_KUBE_STORAGE_CLASS", "")
	c.KubeNamespace, c.KubeDoceNS = get("DOCE_KUBE_NAMESPACE", "doce-workspaces"), get("DOCE_KUBE_DOCE_NAMESPACE", "doce")
	for k, ns := range map[string]string{"DOCE_KUBE_NAMESPACE": c.KubeNamespace, "DOCE_KUBE_DOCE_NAMESPACE": c.KubeDoceNS} {
		if !hostName.MatchString(ns) {
			errs = append(errs, fmt.Errorf("%s=%q is not a namespace name (lower-case letters, digits, inner dashes; at most 63)", k, ns))
		}
	}
	if c.KubeChownVolume, err = strconv.ParseBool(get("DOCE_KUBE_CHOWN_VOLUME", "false")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_KUBE_CHOWN_VOLUME=%q is not true or false", getenv("DOCE_KUBE_CHOWN_VOLUME")))
	}
	if c.KubeStorageBytes, err = units.RAMInBytes(get("DOCE_KUBE_STORAGE_SIZE", "10g")); err != nil || c.KubeStorageBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("DOCE_KUBE_STORAGE_SIZE=%q is not a size of at least 1m (e.g. 10g)", getenv("DOCE_KUBE_STORAGE_SIZE")))
	}
	if net.ParseIP(c.WorkspaceHost) == nil {
		errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_HOST=%q is not an IP address", c.WorkspaceHost))
	}
	c.VaultRoleIDFile, c.VaultSecretIDFile = get("VAULT_ROLE_ID_FILE", ""), get("VAULT_SECRET_ID_FILE", "")
	c.VaultAppRoleMount = get("DOCE_VAULT_APPROLE_MOUNT", "approle")
	switch v := get("VAULT_SECRET_ID_WRAPPED", "false"); v {
	case "true", "1":
		c.VaultSecretWrapped = true
	case "false", "0":
	default:
		errs = append(errs, fmt.Errorf("VAULT_SECRET_ID_WRAPPED=%q is not true or false", v))
	}
	if (c.VaultRoleIDFile == "") != (c.VaultSecretIDFile == "") {
		errs = append(errs, errors.New("VAULT_ROLE_ID_FILE and VAULT_SECRET_ID_FILE go together: set both for AppRole sign-in, or neither"))
	}
	c.Tracing = get("DOCE_TRACING", "off")
	if c.Tracing != "off" && c.Tracing != "stdout" && c.Tracing != "otlp" {
		errs = append(errs, fmt.Errorf("DOCE_TRACING=%q is not off, stdout or otlp", c.Tracing))
	}
	c.MetricsAddr = get("DOCE_METRICS_ADDR", "")
	c.WorkerHealthFile = get("DOCE_WORKER_HEALTH_FILE", "")
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("DOCE_METRICS_ADDR=%q is not host:port", c.MetricsAddr))
		}
	}
	for _, ip := range strings.Split(get("DOCE_WORKSPACE_DNS", ""), ",") {
		if ip = strings.TrimSpace(ip); ip == "" {
			continue
		}
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_DNS: %q is not an IP address", ip))
		}
		c.WorkspaceDNS = append(c.WorkspaceDNS, ip)
	}
	for _, perm := range strings.Split(get("DOCE_AGENT_ASK", ""), ",") {
		if perm = strings.TrimSpace(perm); perm == "" {
			continue
		}
		if strings.IndexFunc(perm, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r == '_') }) >= 0 {
			errs = append(errs, fmt.Errorf("DOCE_AGENT_ASK: %q is not an OpenCode permission name", perm))
		}
		c.AgentAsk = append(c.AgentAsk, perm)
	}
	c.WorkspaceProxy = get("DOCE_WORKSPACE_PROXY", "")
	if c.WorkspaceProxy != "" {
		if u, err := url.Parse(c.WorkspaceProxy); err != nil || u.Scheme != "http" || u.Host == "" {
			errs = append(errs, fmt.Errorf("DOCE_WORKSPACE_PROXY=%q is not an http:// proxy URL", c.WorkspaceProxy))
		}
	}
	if c.ProviderBaseURLs, err = providers.ParseBaseURLs(get("DOCE_PROVIDER_BASE_URLS", "")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_PROVIDER_BASE_URLS: %w", err))
	}
	if c.OAuthURLs, err = providers.ParseBaseURLs(get("DOCE_OAUTH_URLS", "")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_OAUTH_URLS: %w", err))
	}
	if c.OAuthClientIDs, err = providers.ParsePairs(get("DOCE_OAUTH_CLIENT_IDS", "")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_OAUTH_CLIENT_IDS: %w", err))
	}
	if c.OAuthScopes, err = providers.ParsePairs(get("DOCE_OAUTH_SCOPES", "")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_OAUTH_SCOPES: %w", err))
	}
	if c.Outbound, err = outbound.Parse(get("DOCE_ALLOWED_PRIVATE_HOSTS", "")); err != nil {
		errs = append(errs, fmt.Errorf("DOCE_ALLOWED_PRIVATE_HOSTS: %w", err))
		c.Outbound = &outbound.Policy{}
	}
	for _, urls := range []map[string]string{c.ProviderBaseURLs, c.OAuthURLs} { // the operator's own addresses
		for _, raw := range urls {
			if u, err := url.Parse(raw); err == nil {
				c.Outbound.AllowHost(u.Hostname())
			}
		}
	}
	if v := get("DOCE_HOST_GATEWAY", ""); v != "" {
		if c.HostGateway, err = netip.ParseAddr(v); err != nil {
			errs = append(errs, fmt.Errorf("DOCE_HOST_GATEWAY=%q is not an IP address", v))
		}
	}
	for _, p := range strings.Split(get("DOCE_TRUSTED_PROXIES", ""), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		_, perr := netip.ParsePrefix(p)
		if _, aerr := netip.ParseAddr(p); aerr != nil && perr != nil {
			errs = append(errs, fmt.Errorf("DOCE_TRUSTED_PROXIES: %q is not an IP address or CIDR range", p))
		}
		c.TrustedProxies = append(c.TrustedProxies, p)
	}
	loadEgress(c, get, &errs)
	loadQuotas(c, get, &errs)
	c.GatewayAddr = get("DOCE_GATEWAY_ADDR", GatewayHostGateway+":8081")
	gwPort := ""
	if _, port, err := net.SplitHostPort(c.GatewayAddr); err != nil || port == "" || port == "0" {
		errs = append(errs, fmt.Errorf("DOCE_GATEWAY_ADDR=%q is not host:port with a fixed port (e.g. %s:8081): workers write the port into workspaces", c.GatewayAddr, GatewayHostGateway))
	} else {
		gwPort = port
	}
	c.GatewayURL = strings.TrimRight(get("DOCE_GATEWAY_URL", "http://"+outbound.HostDockerInternal+":"+gwPort), "/")
	if u, err := url.Parse(c.GatewayURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		errs = append(errs, fmt.Errorf("DOCE_GATEWAY_URL=%q is not an http(s) URL workspaces reach the gateway at", c.GatewayURL))
	}
	if gwPort != "" {
		// The gateway is served to workspaces: their firewall lets them reach exactly it, by the
		// name they use (DOCE_GATEWAY_URL's, which they also reach without the egress proxy), or
		// where it listens when that URL names a host of the operator's.
		host, port := gatewayURLHostPort(c.GatewayURL)
		if _, err := egress.ParseServed(net.JoinHostPort(host, port)); err != nil {
			host, port, _ = net.SplitHostPort(c.GatewayAddr)
			if ip, err := netip.ParseAddr(host); host == GatewayHostGateway || err == nil && ip.IsUnspecified() {
				host = egress.HostDockerInternal
			}
		}
		if ep, err := egress.ParseServed(net.JoinHostPort(host, port)); err == nil {
			c.WorkspaceServed = append(c.WorkspaceServed, ep...)
		} else {
			errs = append(errs, fmt.Errorf("DOCE_GATEWAY_ADDR=%q: %w", c.GatewayAddr, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

func loadEgress(c *Config, get func(string, string) string, errs *[]error) {
	var err error
	if c.WorkspaceServed, err = egress.ParseServed(get("DOCE_WORKSPACE_SERVED", "")); err != nil {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_SERVED: %w", err))
	}
	v := get("DOCE_EGRESS_PROXY_PORT", "3128")
	if c.EgressProxyPort, _ = strconv.Atoi(v); !validPort(v) {
		*errs = append(*errs, fmt.Errorf("DOCE_EGRESS_PROXY_PORT=%q is not a port number", v))
	}
	c.KubeEgressProxy = get("DOCE_KUBE_EGRESS_PROXY", net.JoinHostPort("doce-egress."+c.KubeDoceNS+".svc", strconv.Itoa(c.EgressProxyPort)))
	if h, p, err := net.SplitHostPort(c.KubeEgressProxy); err != nil || h == "" || !validPort(p) {
		*errs = append(*errs, fmt.Errorf("DOCE_KUBE_EGRESS_PROXY=%q is not host:port (e.g. doce-egress.doce.svc:3128)", c.KubeEgressProxy))
	}
	if c.EgressMode, err = egress.ParseMode(get("DOCE_WORKSPACE_EGRESS", string(egress.Open))); err != nil {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_EGRESS: %w", err))
	}
	if c.EgressAllow, err = egress.ParseAllowList(get("DOCE_WORKSPACE_EGRESS_ALLOW", "")); err != nil {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_EGRESS_ALLOW: %w", err))
	}
	if c.WorkspacePrivate, err = outbound.Parse(get("DOCE_WORKSPACE_PRIVATE_HOSTS", "")); err != nil {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_PRIVATE_HOSTS: %w", err))
		c.WorkspacePrivate = &outbound.Policy{}
	}
	for _, item := range strings.Split(get("DOCE_WORKSPACE_CLIENTS", ""), ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if a, aerr := netip.ParseAddr(item); aerr == nil {
			p, err = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
		}
		if err != nil {
			*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_CLIENTS: %q is not an IP address or CIDR range", item))
			continue
		}
		c.WorkspaceClients = append(c.WorkspaceClients, p)
	}
	c.WorkspaceFirewall = get("DOCE_WORKSPACE_FIREWALL", "iptables")
	if c.WorkspaceFirewall != "iptables" && c.WorkspaceFirewall != "none" {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_FIREWALL=%q is not iptables or none", c.WorkspaceFirewall))
	}
}

func loadQuotas(c *Config, get func(string, string) string, errs *[]error) {
	for _, q := range []struct {
		key, def string
		to       *int
	}{
		{"DOCE_QUOTA_PROJECTS", "50", &c.QuotaProjects},
		{"DOCE_QUOTA_RUNNING", "5", &c.QuotaRunning},
		{"DOCE_QUOTA_CREATE_PER_HOUR", "20", &c.QuotaCreatePerHour},
	} {
		v := get(q.key, q.def)
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000000 {
			*errs = append(*errs, fmt.Errorf("%s=%q is not a number (0: no limit)", q.key, v))
		}
		*q.to = n
	}
	v := get("DOCE_WORKSPACE_CPUS", "2")
	cpus, err := strconv.ParseFloat(v, 64)
	if err != nil || cpus < 0 || cpus > 1024 || cpus > 0 && cpus < 0.1 {
		*errs = append(*errs, fmt.Errorf("DOCE_WORKSPACE_CPUS=%q is not a number of CPUs of at least 0.1 (0: no limit)", v))
	}
	c.WorkspaceNanoCPUs = int64(cpus * 1e9)
}

// gatewayURLHostPort is the host and port of DOCE_GATEWAY_URL, the port from the scheme when
// the URL names none.
func gatewayURLHostPort(raw string) (string, string) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", ""
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Hostname(), port
}

// GatewayListenAddr is the address the gateway listens on, with GatewayHostGateway replaced
// by hostGateway (the Docker bridge's gateway).
func (c *Config) GatewayListenAddr(hostGateway netip.Addr) (string, error) {
	host, port, _ := net.SplitHostPort(c.GatewayAddr)
	if host != GatewayHostGateway {
		return c.GatewayAddr, nil
	}
	if !hostGateway.IsValid() {
		return "", errors.New("config: DOCE_GATEWAY_ADDR names host-gateway, but the Docker bridge's gateway is unknown: set DOCE_HOST_GATEWAY or DOCE_GATEWAY_ADDR")
	}
	return net.JoinHostPort(hostGateway.String(), port), nil
}

// hostName is what DOCE_HOST_NAME may be: a DNS label, safe in a task queue's name.
var hostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// previewBaseURL checks DOCE_PREVIEW_BASE_URL, or picks the development default: when doce is
// reached on a loopback address, http://preview.localhost on doce's port (browsers resolve every
// *.localhost name to loopback, and localhost is another site than 127.0.0.1). Elsewhere there
// is no default: the operator names a domain with a wildcard DNS entry and certificate.
//
// The preview domain must be another site than doce's: not doce's host, a parent or a subdomain
// of it, nor under the same registrable domain (example.com for doce.example.com). A page on such
// a host can set cookies for a domain doce's host is under, which browsers then send to doce, and
// counts as the same site, whose requests carry SameSite cookies: the user's app would be one step
// from doce's session.
func previewBaseURL(v, base string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", nil //nolint:nilerr // DOCE_BASE_URL's own check reports it
	}
	if v == "" {
		ip := net.ParseIP(b.Hostname())
		if ip == nil || !ip.IsLoopback() {
			return "", nil
		}
		v = "http://preview.localhost"
		if b.Port() != "" {
			v += ":" + b.Port()
		}
	}
	v = strings.TrimRight(v, "/")
	u, err := url.Parse(v)
	bad := func(why string) error { return fmt.Errorf("DOCE_PREVIEW_BASE_URL=%q %s", v, why) }
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return "", bad("is not an http(s) URL")
	case u.Path != "" || u.RawQuery != "" || u.User != nil:
		return "", bad("must be an origin only, e.g. https://preview.example.net")
	case net.ParseIP(u.Hostname()) != nil:
		return "", bad("must be a domain name: each project gets a host under it")
	}
	ph, dh := strings.ToLower(u.Hostname()), strings.ToLower(b.Hostname())
	switch {
	case ph == dh || strings.HasSuffix(dh, "."+ph):
		return "", bad("must not be doce's own host (" + dh + ") or a parent of it: previews need an origin of their own")
	case strings.HasSuffix(ph, "."+dh):
		return "", bad("must not be under doce's host (" + dh + "): a preview could set cookies doce receives. " +
			"Use a domain of its own (e.g. https://preview.example.net); in development reach doce at http://127.0.0.1:<port> and leave DOCE_PREVIEW_BASE_URL unset")
	case site(ph) != "" && site(ph) == site(dh):
		return "", bad("must not share doce's registrable domain (" + site(dh) + "): a preview could set cookies for it that doce receives, and browsers count it as doce's site. " +
			"Use a domain of its own, e.g. https://preview.example.net for doce at https://doce.example.com")
	}
	return u.Scheme + "://" + u.Host, nil
}

// site is host's registrable domain (example.co.uk for a.b.example.co.uk), by the public suffix
// list; "" for a host that has none (localhost, a bare suffix).
func site(host string) string {
	d, err := publicsuffix.EffectiveTLDPlusOne(host)
	if err != nil {
		return ""
	}
	return d
}

func duration(get func(string, string) string, key, def string, least time.Duration, errs *[]error) time.Duration {
	v := get(key, def)
	d, err := time.ParseDuration(v)
	if err != nil || d < least {
		*errs = append(*errs, fmt.Errorf("%s=%q is not a duration of at least %s (e.g. %s)", key, v, least, def))
	}
	return d
}

// databaseForLog is Database without the password.
func (c *Config) databaseForLog() string {
	if c.DatabaseURL == "" {
		return c.DBPath
	}
	if u, err := url.Parse(c.DatabaseURL); err == nil {
		return u.Redacted()
	}
	return "postgres://(invalid)"
}

// RequireVaultAuth is checked by the commands that talk to Vault.
func (c *Config) RequireVaultAuth() error {
	if c.VaultToken == "" && c.VaultRoleIDFile == "" {
		return errors.New("config: neither VAULT_TOKEN nor VAULT_ROLE_ID_FILE/VAULT_SECRET_ID_FILE is set; doce needs a Vault token, or an AppRole, allowed to use the transit engine")
	}
	return nil
}

// UsesAppRole reports whether doce signs in to Vault with AppRole.
func (c *Config) UsesAppRole() bool { return c.VaultRoleIDFile != "" }

// Database names the database store.Open opens: DOCE_DATABASE_URL when set, else the SQLite
// file DOCE_DB_PATH.
func (c *Config) Database() string {
	if c.DatabaseURL != "" {
		return c.DatabaseURL
	}
	return c.DBPath
}

// SecureCookies reports whether cookies must carry the Secure flag.
func (c *Config) SecureCookies() bool { return strings.HasPrefix(c.BaseURL, "https://") }

// String lists the settings without secrets, for the start-up log.
func (c *Config) String() string {
	return "http=" + c.HTTPAddr + " db=" + c.databaseForLog() + " temporal=" + c.TemporalAddress + "/" + c.TemporalNamespace +
		" queue=" + c.TaskQueue + " vault=" + c.VaultAddr + " image=" + c.OpenCodeImage +
		" memory=" + strconv.FormatInt(c.WorkspaceMemory>>20, 10) + "MiB pids=" + strconv.FormatInt(c.WorkspacePids, 10) +
		" pool=" + strconv.Itoa(c.PoolSize) + " host=" + c.HostName + " egress=" + string(c.EgressMode) + " firewall=" + c.WorkspaceFirewall + " gateway=" + c.GatewayAddr + " (" + c.GatewayURL + ")"
}

// validPort is a TCP port number, 1 to 65535.
func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}
