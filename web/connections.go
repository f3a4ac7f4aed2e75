package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/connections"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/store"
)

// ConnectionView is a connection as shown to its owner: never the secret, only a hint.
type ConnectionView struct {
	ID           string   `json:"id"`
	ProviderID   string   `json:"providerId"`
	Provider     string   `json:"providerName"`
	AuthType     string   `json:"authType"`
	Status       string   `json:"status"`
	DisplayHint  string   `json:"displayHint"`
	BaseURL      string   `json:"baseURL,omitempty"`
	WellKnownURL string   `json:"wellKnownUrl,omitempty"`
	Models       []string `json:"models,omitempty"`
	// OAuth connections: when the access token expires (doce refreshes it before), and why a
	// connection stopped working.
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	Error     string     `json:"error,omitempty"`
	SignIn    bool       `json:"-"` // the provider has a sign-in: offer "Log in again"
	// KeyInWorkspace: the credential is handed to the workspace's OpenCode, as doce's LLM
	// gateway cannot use it on the workspace's behalf (OAuth sign-ins, well-known
	// configurations); false: the workspace holds only a gateway token.
	KeyInWorkspace bool       `json:"keyInWorkspace"`
	LastUsedAt     *time.Time `json:"lastUsedAt"`
	CreatedAt      time.Time  `json:"createdAt"`
}

func connectionView(c store.ProviderConnection) ConnectionView {
	p, _ := providers.Lookup(c.ProviderID)
	return ConnectionView{
		ID: c.ID, ProviderID: c.ProviderID, Provider: p.Name, AuthType: c.AuthType, Status: c.Status,
		DisplayHint: c.DisplayHint, BaseURL: c.BaseURL, WellKnownURL: c.WellKnownURL, Models: c.Models(),
		ExpiresAt: c.OAuthExpiresAt, Error: c.ErrorMessage, SignIn: p.OAuth != nil, LastUsedAt: c.LastUsedAt, CreatedAt: c.CreatedAt,
		KeyInWorkspace: !providers.Proxied(c.ProviderID, c.AuthType),
	}
}

// disconnect starts taking the caller's provider away from every project.
func (s *Server) disconnect(c *gin.Context) (*store.ProviderConnection, bool) {
	conn, err := s.connections.Disconnect(c.Request.Context(), currentUser(c), c.Param("providerId"))
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return conn, true
}

func (s *Server) apiDisconnect(c *gin.Context) {
	if conn, ok := s.disconnect(c); ok {
		c.JSON(http.StatusAccepted, gin.H{"connection": connectionView(*conn)})
	}
}

func (s *Server) disconnectSubmit(c *gin.Context) {
	if _, ok := s.disconnect(c); ok {
		c.Redirect(http.StatusSeeOther, "/settings/providers")
	}
}

// PreferredInput picks the provider new projects use by default.
type PreferredInput struct {
	PreferredProviderID string `json:"preferredProviderId" form:"preferredProviderId"`
}

func (s *Server) setPreferred(c *gin.Context, providerID string) bool {
	if err := s.connections.SetPreferred(c.Request.Context(), currentUser(c), providerID); err != nil {
		s.fail(c, err)
		return false
	}
	return true
}

func (s *Server) apiSetPreferred(c *gin.Context) {
	var in PreferredInput
	if !bindJSON(c, s, &in) {
		return
	}
	if s.setPreferred(c, in.PreferredProviderID) {
		c.JSON(http.StatusOK, gin.H{"settings": gin.H{"preferredProviderId": in.PreferredProviderID}})
	}
}

func (s *Server) preferredSubmit(c *gin.Context) {
	if s.setPreferred(c, c.Param("providerId")) {
		c.Redirect(http.StatusSeeOther, "/settings/providers")
	}
}

func (s *Server) providersPage(c *gin.Context) {
	s.renderProviders(c, http.StatusOK, nil, connections.Input{})
}

func (s *Server) renderProviders(c *gin.Context, status int, formErr *httperr.Error, in connections.Input) {
	u := currentUser(c)
	conns, err := s.Store.ConnectionsByUser(c.Request.Context(), u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]ConnectionView, 0, len(conns))
	for _, cn := range conns {
		views = append(views, connectionView(cn))
	}
	settings, err := s.Store.Settings(c.Request.Context(), u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	audit, err := s.Store.AuditEventsByActor(c.Request.Context(), u.ID, 20)
	if err != nil {
		s.fail(c, err)
		return
	}
	in.APIKey, in.Token = "", "" // never echo a secret back into the form
	s.render(c, status, "providers.html", gin.H{
		"Title": "Providers", "Connections": views, "Catalog": providers.All(), "SignIns": providers.OAuthProviders(), "Form": in, "Error": formErr,
		"Preferred": settings.PreferredProviderID, "Audit": audit,
	})
}

func (s *Server) connectSubmit(c *gin.Context) {
	var in connections.Input
	_ = c.ShouldBind(&in) // absent fields stay empty and fail validation below
	if _, err := s.connections.Connect(c.Request.Context(), currentUser(c), in); err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderProviders(c, e.Status, e, in)
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/providers")
}

func (s *Server) apiProviders(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"providers": providers.All()})
}

func (s *Server) apiConnections(c *gin.Context) {
	conns, err := s.Store.ConnectionsByUser(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]ConnectionView, 0, len(conns))
	for _, cn := range conns {
		views = append(views, connectionView(cn))
	}
	c.JSON(http.StatusOK, gin.H{"connections": views})
}

func (s *Server) apiConnect(c *gin.Context) {
	var in connections.Input
	if !bindJSON(c, s, &in) {
		return
	}
	conn, err := s.connections.Connect(c.Request.Context(), currentUser(c), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if in.Replace && conn.CreatedAt.Before(conn.UpdatedAt) {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"connection": connectionView(*conn)})
}

// bindJSON reads the request's JSON body into v, under the body cap, and checks its text.
func bindJSON(c *gin.Context, s *Server, v any) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	if err := c.ShouldBindJSON(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, errTooLarge)
		} else {
			s.fail(c, httperr.Invalid("", "The body is not valid JSON for this request: send a JSON object with the documented fields."))
		}
		return false
	}
	if e := checkJSONText(v); e != nil {
		s.fail(c, e)
		return false
	}
	return true
}

func (s *Server) apiAudit(c *gin.Context) {
	evs, err := s.Store.AuditEventsByActor(c.Request.Context(), currentUser(c).ID, 100)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": evs})
}

func (s *Server) apiAuditAll(c *gin.Context) {
	evs, err := s.Store.AuditEvents(c.Request.Context(), 500)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"events": evs})
}
