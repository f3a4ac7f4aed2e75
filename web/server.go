// Package web is doce's HTTP tier: server-rendered pages and the JSON API under /api/v1, both
// over the same handlers' logic.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/connections"
	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/gateway"
	"github.com/doce-dev/doce/hosts"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/hub"
	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/preview"
	"github.com/doce-dev/doce/projects"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// openAPI documents every /api/v1 route; a test keeps it complete.
//
//go:embed openapi.json
var openAPI []byte

// Server holds what the handlers need.
type Server struct {
	Store     *store.Store
	Secrets   *secrets.Transit
	Setups    *setups.Service
	Workspace workspace.Backend // reads a project's files for Download
	// Hosts, when set, knows the Docker hosts projects are on: where to reach them, whether
	// their workers are there (a project on an unreachable one says so), their engines.
	Hosts *hosts.Registry
	// Nodes, when set (the Kubernetes backend), are the cluster's nodes the ops page cordons.
	Nodes    NodeCordoner
	Verifier *providers.Verifier
	// Outbound makes doce's requests to addresses users give (their git forges) under the
	// outbound policy (DOCE_ALLOWED_PRIVATE_HOSTS).
	Outbound      *http.Client
	Metrics       *metrics.Metrics      // when set, requests are timed (DOCE_METRICS_ADDR serves them, apart)
	Payloads      *secrets.PayloadCodec // when set, /codec serves the Temporal UI's codec protocol
	TemporalUIURL string                // the Temporal UI, the one origin the codec endpoint answers
	SessionTTL    time.Duration
	StuckAfter    time.Duration // the ops page lists setups running longer
	// PoolImage, when set, lets new projects claim a prebuilt workspace on that image.
	PoolImage string
	// AgentAsk names the permissions the agent asks for (DOCE_AGENT_ASK): part of a project's
	// OpenCode configuration, which a prebuilt workspace it claims must have.
	AgentAsk []string
	// BaseURL is doce's own address (DOCE_BASE_URL): requests naming another Host are refused.
	// Empty only in tests of the router alone.
	BaseURL string
	// GatewayURL is the LLM gateway as workspaces reach it (DOCE_GATEWAY_URL): part of a
	// project's OpenCode configuration, like AgentAsk.
	GatewayURL string
	// Catalog is each user's OpenCode model catalog, shared with the gateway; made when nil.
	Catalog       *catalog.Catalog
	SecureCookies bool
	// TrustedProxies are the addresses (IPs or CIDRs) whose X-Forwarded-For gin believes when it
	// finds a client's address, for login throttling; none by default (DOCE_TRUSTED_PROXIES).
	TrustedProxies []string
	// LoginBackoff overrides the login throttles' backoff per kind (tests).
	LoginBackoff map[string]store.Backoff
	Log          *slog.Logger
	// Agent reaches projects' OpenCode servers; without it the conversation routes answer 409.
	Agent *agent.Connector
	// HubGrace is how long a project's event subscription outlives its last watcher (default 30 s).
	HubGrace time.Duration
	// Preview serves projects' previews on their own origins; nil when previews are off.
	Preview *preview.Preview
	// Egress is the operator's egress policy, for projects that choose none.
	Egress EgressDefaults
	// Quotas bound each user's projects and running workspaces.
	Quotas projects.Quotas

	pages  map[string]*template.Template
	router *gin.Engine
	// projects and connections do the domain work the handlers are asked for, made by Handler
	// from the fields above.
	projects    *projects.Service
	connections *connections.Service
	events      *hub.Hub
	// attention is the ops list, asked of Temporal's visibility at most once a second however
	// many operators (or scripts) load it: visibility is rate-limited per namespace.
	attention *otter.Cache[struct{}, []setups.Setup]
}

// Cookie names. Over https (SecureCookies) they carry the __Host- prefix: browsers then keep
// them to doce's exact host (Secure, Path=/, no Domain) and refuse a cookie of that name from any
// other host, so a page on a sibling or child domain cannot plant a session or a device in doce's
// jar. Plain http (development) cannot have the prefix, which needs Secure: there the names are
// bare and the cookies still host-only.
const (
	sessionCookie = "doce_session"
	deviceCookie  = "doce_device"
)

// DoceCookies are the names of doce's own cookies (without a prefix), which a preview takes off
// every request it passes to an app.
func DoceCookies() []string { return []string{sessionCookie, deviceCookie} }

// cookieName is name as this server sets and reads it.
func (s *Server) cookieName(name string) string {
	if s.SecureCookies {
		return "__Host-" + name
	}
	return name
}

// setCookie sets (maxAge > 0) or removes (maxAge < 0) one of doce's cookies: HttpOnly, SameSite
// Lax, host-only, Secure over https.
func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// readCookie is the value of one of doce's cookies, "" when absent.
func (s *Server) readCookie(c *gin.Context, name string) string {
	v, _ := c.Cookie(s.cookieName(name))
	return v
}

// Handler returns the HTTP handler: the Gin router behind cross-origin request protection,
// which refuses state-changing requests a browser sends from another origin (CSRF), behind the
// Host allow-list and the security headers, and, in front of all, the preview for requests to a
// preview host.
func (s *Server) Handler() (http.Handler, error) {
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	if s.Catalog == nil {
		s.Catalog = &catalog.Catalog{}
	}
	s.attention = otter.Must(&otter.Options[struct{}, []setups.Setup]{
		ExpiryCalculator: otter.ExpiryWriting[struct{}, []setups.Setup](time.Second)})
	if s.Agent != nil {
		s.events = hub.New(func(ctx context.Context, projectID string) (*opencode.Client, error) {
			p, err := s.Store.Project(ctx, projectID)
			if err != nil {
				return nil, err
			}
			return s.Agent.Client(ctx, p)
		}, s.Log, s.HubGrace)
		s.events.OnConnect = func(ctx context.Context, projectID string, oc *opencode.Client) {
			if p, err := s.Store.Project(ctx, projectID); err == nil {
				s.Catalog.Load(ctx, p.OwnerUserID, oc)
			}
		}
	}
	s.projects = &projects.Service{
		Store: s.Store, Setups: s.Setups, Hosts: s.Hosts, Catalog: s.Catalog, Metrics: s.Metrics, Log: s.Log,
		PoolImage: s.PoolImage, AgentAsk: s.AgentAsk, GatewayURL: s.GatewayURL, Quotas: s.Quotas,
	}
	if s.events != nil {
		s.projects.OnRunning = s.events.Reconnect
	}
	s.connections = &connections.Service{Store: s.Store, Secrets: s.Secrets, Setups: s.Setups, Verifier: s.Verifier, Outbound: s.Outbound, Log: s.Log}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	if err := r.SetTrustedProxies(s.TrustedProxies); err != nil {
		return nil, fmt.Errorf("web: trusted proxies: %w", err)
	}
	r.Use(s.logRequests, gin.CustomRecovery(s.recovered), s.checkInput)
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) { s.fail(c, httperr.NotFound("page")) })
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, httperr.New(http.StatusMethodNotAllowed, "method_not_allowed", "This address does not accept "+c.Request.Method+"."))
	})

	static, _ := fs.Sub(staticFS, "static")
	r.StaticFS("/static", http.FS(static))
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", s.readyz)

	r.Use(s.loadUser)
	r.GET("/setup", s.setupPage)
	r.POST("/setup", s.setupSubmit)
	r.GET("/login", s.loginPage)
	r.POST("/login", s.loginSubmit)
	r.POST("/logout", s.logout)

	pages := r.Group("/", s.requireUser)
	pages.GET("/", func(c *gin.Context) { c.Redirect(http.StatusSeeOther, "/projects") })
	pages.GET("/settings/providers", s.providersPage)
	pages.POST("/settings/providers", s.connectSubmit)
	pages.POST("/settings/providers/:providerId/disconnect", s.disconnectSubmit)
	pages.POST("/settings/providers/:providerId/preferred", s.preferredSubmit)
	pages.GET("/settings/providers/:providerId/oauth", s.oauthPage)
	pages.POST("/settings/providers/:providerId/oauth", s.loginSubmitOAuth)
	pages.GET("/settings/forges", s.forgesPage)
	pages.POST("/settings/forges", s.connectForgeSubmit)
	pages.POST("/settings/forges/:id/disconnect", s.disconnectForgeSubmit)
	pages.GET("/projects", s.projectsPage)
	pages.POST("/projects", s.createProjectSubmit)
	project := pages.Group("/projects/:id", s.withProject)
	project.GET("", s.projectPage)
	project.GET("/events", s.projectEvents)
	project.GET("/preview", s.previewRedirect)
	project.POST("/retry", s.projectAction(retryAction))
	project.POST("/cancel", s.projectAction(cancelAction))
	project.POST("/delete", s.projectAction(deleteAction))
	project.POST("/stop", s.projectAction(stopAction))
	project.POST("/start", s.projectAction(startAction))
	project.POST("/budget", s.projectBudgetSubmit)
	project.POST("/egress", s.egressSubmit)
	s.conversationRoutes(project)

	pages.GET("/usage", s.usagePage)
	pages.GET("/account", s.accountPage)
	pages.POST("/account", s.accountSubmit)
	pages.POST("/account/tokens", s.createTokenSubmit)
	pages.POST("/account/tokens/:id/revoke", s.revokeTokenSubmit)
	admin := pages.Group("/admin", s.requireAdmin)
	admin.GET("/users", s.usersPage)
	admin.POST("/users", s.usersSubmit)
	admin.POST("/users/:id/disable", s.disableSubmit)
	admin.POST("/users/:id/budget", s.userBudgetSubmit)
	admin.POST("/users/:id/quotas", s.userQuotaSubmit)
	admin.POST("/budget", s.defaultBudgetSubmit)
	admin.POST("/lockouts/clear", s.clearLockoutSubmit)
	ops := pages.Group("/ops", s.requireAdmin)
	ops.GET("", s.opsPage)
	ops.POST("/retry", s.opsSubmit(setups.OpRetry))
	ops.POST("/cancel", s.opsSubmit(setups.OpCancel))
	ops.POST("/hosts/:name/drain", s.drainHost)
	ops.POST("/hosts/:name/undrain", s.undrainHost)
	ops.POST("/nodes/:name/cordon", s.cordonNode)
	ops.POST("/nodes/:name/uncordon", s.uncordonNode)

	codec := r.Group("/codec", jsonErrors, s.codecCORS)
	codec.OPTIONS("/encode", func(*gin.Context) {}) // codecCORS answers the preflights
	codec.OPTIONS("/decode", func(*gin.Context) {})
	codec.POST("/encode", s.requireCodecAdmin, s.codec((*secrets.PayloadCodec).Encode, "encoded"))
	codec.POST("/decode", s.requireCodecAdmin, s.codec((*secrets.PayloadCodec).Decode, "decoded"))

	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPI) })
	api := r.Group("/api/v1", s.requireUser)
	api.GET("/providers", s.apiProviders)
	api.GET("/connections", s.apiConnections)
	api.POST("/connections", s.apiConnect)
	api.DELETE("/connections/:providerId", s.apiDisconnect)
	api.POST("/connections/oauth/:providerId/start", s.apiStartLogin)
	api.GET("/connections/oauth/:providerId", s.apiLoginStatus)
	api.PUT("/settings/preferred-provider", s.apiSetPreferred)
	api.GET("/forges", s.apiForges)
	api.POST("/forges", s.apiConnectForge)
	api.DELETE("/forges/:id", s.apiDisconnectForge)
	api.GET("/audit", s.apiAudit)
	api.GET("/usage", s.apiUsage)
	api.GET("/projects", s.apiProjects)
	api.POST("/projects", s.apiCreateProject)
	project = api.Group("/projects/:id", s.withProject)
	project.GET("", s.apiProject)
	project.POST("/retry", s.projectAction(retryAction))
	project.POST("/cancel", s.projectAction(cancelAction))
	project.DELETE("", s.projectAction(deleteAction))
	project.POST("/stop", s.projectAction(stopAction))
	project.POST("/start", s.projectAction(startAction))
	project.GET("/egress", s.apiProjectEgress)
	project.PUT("/egress", s.apiSetProjectEgress)
	project.GET("/export", s.apiExport)
	project.GET("/files", s.apiFiles)
	project.GET("/files/content", s.apiFileContent)
	project.GET("/budget", s.apiProjectBudget)
	project.PUT("/budget", s.apiSetProjectBudget)
	s.conversationRoutes(project)
	api.POST("/account/password", s.apiChangePassword)
	api.GET("/account/tokens", s.apiTokens)
	api.POST("/account/tokens", s.apiCreateToken)
	api.DELETE("/account/tokens/:id", s.apiRevokeToken)
	apiAdmin := api.Group("/admin", s.requireAdmin)
	apiAdmin.GET("/users", s.apiUsers)
	apiAdmin.POST("/users", s.apiCreateUser)
	apiAdmin.POST("/users/:id/disable", s.apiDisableUser)
	apiAdmin.PUT("/users/:id/budget", s.apiSetUserBudget)
	apiAdmin.GET("/users/:id/quotas", s.apiUserQuota)
	apiAdmin.PUT("/users/:id/quotas", s.apiSetUserQuota)
	apiAdmin.PUT("/budget", s.apiSetDefaultBudget)
	apiAdmin.GET("/usage", s.apiUsageAll)
	apiAdmin.GET("/lockouts", s.apiLockouts)
	apiAdmin.POST("/lockouts/clear", s.apiClearLockout)
	apiOps := api.Group("/ops", s.requireAdmin)
	apiOps.GET("/setups", s.apiOpsSetups)
	apiOps.GET("/audit", s.apiAuditAll)
	apiOps.POST("/setups/retry", s.opsSubmit(setups.OpRetry))
	apiOps.POST("/setups/cancel", s.opsSubmit(setups.OpCancel))
	apiOps.GET("/hosts", s.apiOpsHosts)
	apiOps.POST("/hosts/:name/drain", s.drainHost)
	apiOps.POST("/hosts/:name/undrain", s.undrainHost)
	apiOps.GET("/nodes", s.apiOpsNodes)
	apiOps.POST("/nodes/:name/cordon", s.cordonNode)
	apiOps.POST("/nodes/:name/uncordon", s.uncordonNode)

	s.router = r
	cop := http.NewCrossOriginProtection()
	// The Temporal UI posts to the codec endpoint from its own origin. codecCORS admits that one
	// origin there; decoding changes nothing, so it is no CSRF target. Every other route keeps
	// the same-origin rule.
	cop.AddInsecureBypassPattern("POST /codec/")
	h := s.securityHeaders(s.allowHosts(headAsGet(cop.Handler(r))))
	if s.Preview != nil {
		// Preview hosts are routed before doce's handler: none of doce's cookies, checks or
		// pages apply there.
		h = s.Preview.Route(h)
	}
	return h, nil
}

// headAsGet answers HEAD wherever GET is served (RFC 9110 asks it of every GET resource):
// the request is routed as GET and net/http, which still sees HEAD, writes no body.
func headAsGet(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.Clone(r.Context())
			r.Method = http.MethodGet
		}
		h.ServeHTTP(w, r)
	})
}

// conversationRoutes are served twice: under /api/v1 and for the page under /projects.
func (s *Server) conversationRoutes(g *gin.RouterGroup) {
	g.Use(jsonErrors)
	g.GET("/messages", s.apiMessages)
	g.POST("/messages", s.apiSend)
	g.POST("/abort", s.apiAbort)
	g.GET("/sessions", s.apiSessions)
	g.POST("/sessions", s.apiNewSession)
	g.POST("/permissions/:requestId", s.apiPermission)
	g.POST("/questions/:requestId", s.apiQuestion)
	g.GET("/models", s.apiModels)
	g.GET("/stream", s.stream)
	s.workbenchRoutes(g) // web/changes.go, web/terminal.go
	s.gitRoutes(g)       // web/git.go
}

func (s *Server) parseTemplates() error {
	s.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("web: unable to parse %s: %w", n, err)
		}
		s.pages[n[len("templates/"):]] = t
	}
	return nil
}

// fieldData is what the "field" template renders.
type fieldData struct {
	Name, Label, Type, Value, Error string
}

var funcs = template.FuncMap{
	"forgeName": forges.Name,
	// field builds a form field, with formErr's message when it concerns this field.
	"field": func(name, label, typ, value string, formErr *httperr.Error) fieldData {
		f := fieldData{Name: name, Label: label, Type: typ, Value: value}
		if formErr != nil && formErr.Field == name {
			f.Error = formErr.Message
		}
		return f
	},
	// elapsed is how long a step took, or has been running.
	"elapsed": func(start, end *time.Time) string {
		if start == nil {
			return ""
		}
		stop := time.Now()
		if end != nil {
			stop = *end
		}
		return stop.Sub(*start).Round(100 * time.Millisecond).String()
	},
	"date": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	// usd formats billionths of a dollar, as the gateway's budget messages do.
	"usd": gateway.Dollars,
}

// render writes page name with data. A template error after the header is logged, not shown.
func (s *Server) render(c *gin.Context, status int, name string, data gin.H) {
	data["User"] = currentUser(c)
	data["Path"] = c.Request.URL.Path
	c.Status(status)
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.pages[name].Execute(c.Writer, data); err != nil {
		s.Log.Error("render failed", "page", name, "error", err)
	}
}

func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	// Only method, route and status: never query strings or bodies, which can hold secrets.
	route, took := c.FullPath(), time.Since(start)
	attrs := []any{"method", c.Request.Method, "route", route, "status", c.Writer.Status(), "ms", took.Milliseconds()}
	if u := currentUser(c); u != nil {
		attrs = append(attrs, "user_id", u.ID)
	}
	if id := c.Param("id"); id != "" && (strings.HasPrefix(route, "/projects/") || strings.HasPrefix(route, "/api/v1/projects/")) {
		attrs = append(attrs, "project_id", id)
	}
	s.Log.Info("http", attrs...)
	if s.Metrics != nil && !strings.HasSuffix(route, "/events") && !strings.HasSuffix(route, "/stream") && !strings.HasSuffix(route, "/connect") { // a stream's length is no latency
		if route == "" {
			route = "unmatched"
		}
		s.Metrics.HTTPDuration.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Observe(took.Seconds())
	}
}

func (s *Server) recovered(c *gin.Context, v any) {
	s.fail(c, httperr.Internal(fmt.Errorf("panic in handler: %v", v)))
}

// jsonErrors marks a group of routes whose errors are answered as JSON wherever they are
// mounted: the page's own scripts read them (the conversation routes under /projects/:id).
func jsonErrors(c *gin.Context) { c.Set(jsonErrorsKey, true) }

const jsonErrorsKey = "doce.jsonErrors"

// fail is the one way a handler answers an error: JSON under /api and on routes the page's
// scripts read, an error page elsewhere. What is not an httperr.Error is internal: the person
// sees a generic message and the log gets the cause.
func (s *Server) fail(c *gin.Context, err error) {
	e := s.shown(c, err)
	if isAPI(c) || c.GetBool(jsonErrorsKey) {
		c.AbortWithStatusJSON(e.Status, gin.H{"error": e})
		return
	}
	s.render(c, e.Status, "error.html", gin.H{"Title": http.StatusText(e.Status), "Error": e})
	c.Abort()
}

// shown is err as it may be shown, logging the cause of an internal one. Handlers that put
// an error in a form or a batch result use it; the rest call fail.
func (s *Server) shown(c *gin.Context, err error) *httperr.Error {
	e := httperr.From(err)
	if e.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())))
	}
	if cause := errors.Unwrap(e); cause != nil {
		level := slog.LevelInfo // the person was told why; the cause is for whoever looks later
		if e.Code == httperr.Internal(nil).Code {
			level = slog.LevelError
		}
		s.Log.Log(c.Request.Context(), level, "request failed", "route", c.FullPath(), "status", e.Status, "error", cause)
	}
	return e
}

func isAPI(c *gin.Context) bool {
	p := c.Request.URL.Path
	return len(p) >= 8 && p[:8] == "/api/v1/" || p == "/api/v1"
}

// readyz answers 200 when the database, Temporal and Vault all answer, else 503 (load balancers
// and compose healthchecks use it; /healthz only says the process runs). It answers anyone, so it
// says only ready or not: which dependency failed, and why, go to the log.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]error{"database": s.Store.Ping(ctx), "vault": s.Secrets.Ping(ctx)}
	if s.Setups != nil && s.Setups.Temporal != nil {
		_, err := s.Setups.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
		checks["temporal"] = err
	}
	status, out := http.StatusOK, "ready"
	for name, err := range checks {
		if err != nil {
			s.Log.Warn("not ready", "dependency", name, "error", err)
			status, out = http.StatusServiceUnavailable, "unavailable"
		}
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, gin.H{"status": out})
}
