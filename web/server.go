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
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
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
	Store      *store.Store
	Secrets    *secrets.Transit
	Setups     *setups.Service
	Verifier   *providers.Verifier
	Metrics    *metrics.Metrics // when set, /metrics serves it and requests are timed
	SessionTTL time.Duration
	StuckAfter time.Duration // the ops page lists setups running longer
	// PoolImage, when set, lets new projects claim a prebuilt workspace on that image.
	PoolImage     string
	SecureCookies bool
	Log           *slog.Logger

	pages   map[string]*template.Template
	router  *gin.Engine
	ensured sync.Map // project id → when ensureRunning last asked
}

const sessionCookie = "doce_session"

// Handler returns the HTTP handler: the Gin router behind cross-origin request protection,
// which refuses state-changing requests a browser sends from another origin (CSRF).
func (s *Server) Handler() (http.Handler, error) {
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(s.logRequests, gin.CustomRecovery(s.recovered))
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) { s.fail(c, errNotFound("page")) })
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "This address does not accept " + c.Request.Method + "."})
	})

	static, _ := fs.Sub(staticFS, "static")
	r.StaticFS("/static", http.FS(static))
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", s.readyz)
	if s.Metrics != nil {
		r.GET("/metrics", gin.WrapH(s.Metrics.Handler()))
	}

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
	pages.GET("/projects", s.projectsPage)
	pages.POST("/projects", s.createProjectSubmit)
	pages.GET("/projects/:id", s.projectPage)
	pages.GET("/projects/:id/events", s.projectEvents)
	pages.POST("/projects/:id/retry", s.projectAction(retryAction, 0))
	pages.POST("/projects/:id/cancel", s.projectAction(cancelAction, 0))
	pages.POST("/projects/:id/delete", s.projectAction(deleteAction, 0))

	pages.GET("/account", s.accountPage)
	pages.POST("/account", s.accountSubmit)
	admin := pages.Group("/admin", s.requireAdmin)
	admin.GET("/users", s.usersPage)
	admin.POST("/users", s.usersSubmit)
	admin.POST("/users/:id/disable", s.disableSubmit)
	ops := pages.Group("/ops", s.requireAdmin)
	ops.GET("", s.opsPage)
	ops.POST("/retry", s.opsSubmit(true))
	ops.POST("/cancel", s.opsSubmit(false))

	r.GET("/api/v1/openapi.json", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", openAPI) })
	api := r.Group("/api/v1", s.requireUser)
	api.GET("/providers", s.apiProviders)
	api.GET("/connections", s.apiConnections)
	api.POST("/connections", s.apiConnect)
	api.DELETE("/connections/:providerId", s.apiDisconnect)
	api.POST("/connections/oauth/:providerId/start", s.apiStartLogin)
	api.GET("/connections/oauth/:providerId", s.apiLoginStatus)
	api.PUT("/settings/preferred-provider", s.apiSetPreferred)
	api.GET("/audit", s.apiAudit)
	api.GET("/projects", s.apiProjects)
	api.POST("/projects", s.apiCreateProject)
	api.GET("/projects/:id", s.apiProject)
	api.POST("/projects/:id/retry", s.projectAction(retryAction, http.StatusAccepted))
	api.POST("/projects/:id/cancel", s.projectAction(cancelAction, http.StatusAccepted))
	api.DELETE("/projects/:id", s.projectAction(deleteAction, http.StatusAccepted))
	api.POST("/account/password", s.apiChangePassword)
	apiAdmin := api.Group("/admin", s.requireAdmin)
	apiAdmin.GET("/users", s.apiUsers)
	apiAdmin.POST("/users", s.apiCreateUser)
	apiAdmin.POST("/users/:id/disable", s.apiDisableUser)
	apiOps := api.Group("/ops", s.requireAdmin)
	apiOps.GET("/setups", s.apiOpsSetups)
	apiOps.GET("/audit", s.apiAuditAll)
	apiOps.POST("/setups/retry", s.opsSubmit(true))
	apiOps.POST("/setups/cancel", s.opsSubmit(false))

	s.router = r
	return http.NewCrossOriginProtection().Handler(r), nil
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
	// field builds a form field, with formErr's message when it concerns this field.
	"field": func(name, label, typ, value string, formErr *Error) fieldData {
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
	if s.Metrics != nil && route != "/projects/:id/events" { // a stream's length is no latency
		if route == "" {
			route = "unmatched"
		}
		s.Metrics.HTTPDuration.WithLabelValues(c.Request.Method, route, strconv.Itoa(c.Writer.Status())).Observe(took.Seconds())
	}
}

func (s *Server) recovered(c *gin.Context, v any) {
	s.Log.Error("panic in handler", "route", c.FullPath(), "panic", fmt.Sprint(v))
	s.fail(c, errInternal)
}

// Error is an error fit to show: an HTTP status, a stable code, a message a person can act on,
// and the form field it concerns. Internal errors become errInternal before reaching anyone.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Message }

var errInternal = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "Something went wrong on our side. Try again; if it persists, tell your operator."}

func errNotFound(what string) *Error {
	return &Error{Status: http.StatusNotFound, Code: "not_found", Message: "No such " + what + "."}
}

func errBadRequest(field, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: msg, Field: field}
}

// public turns any error into one safe to show, logging the internal ones.
func (s *Server) public(c *gin.Context, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Status: 499, Code: "canceled", Message: "The request was canceled."}
	}
	s.Log.Error("request failed", "route", c.FullPath(), "error", err)
	return errInternal
}

// fail answers with err: JSON under /api, an error page elsewhere.
func (s *Server) fail(c *gin.Context, err error) {
	e := s.public(c, err)
	if isAPI(c) {
		c.AbortWithStatusJSON(e.Status, gin.H{"error": e})
		return
	}
	s.render(c, e.Status, "error.html", gin.H{"Title": http.StatusText(e.Status), "Error": e})
	c.Abort()
}

func isAPI(c *gin.Context) bool {
	p := c.Request.URL.Path
	return len(p) >= 8 && p[:8] == "/api/v1/" || p == "/api/v1"
}

// readyz answers 200 when the database, Temporal and Vault all answer, else 503 naming which
// do not (load balancers and compose healthchecks use it; /healthz only says the process runs).
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]error{"database": s.Store.Ping(ctx), "vault": s.Secrets.Ping(ctx)}
	if s.Setups != nil && s.Setups.Temporal != nil {
		_, err := s.Setups.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
		checks["temporal"] = err
	}
	status, out := http.StatusOK, gin.H{}
	for name, err := range checks {
		if err != nil {
			s.Log.Warn("not ready", "dependency", name, "error", err)
			status, out[name] = http.StatusServiceUnavailable, "unreachable"
		} else {
			out[name] = "ok"
		}
	}
	c.JSON(status, out)
}
