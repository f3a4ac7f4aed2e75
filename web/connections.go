package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// ConnectInput is what connecting a provider takes, from the form or the API.
type ConnectInput struct {
	ProviderID string `json:"providerId" form:"providerId"`
	APIKey     string `json:"apiKey" form:"apiKey"`
	BaseURL    string `json:"baseURL" form:"baseURL"`
	Models     string `json:"models" form:"models"` // custom providers: comma-separated model ids
	// Replace swaps the key of an existing connection; without it a second connect is refused.
	Replace bool `json:"replace" form:"replace"`
	// Verify asks the provider whether the key works before storing it.
	Verify bool `json:"verify" form:"verify"`
	// Enterprise well-known connections: the organisation's URL and the token it issued.
	WellKnownURL string `json:"wellKnownUrl" form:"wellKnownUrl"`
	Token        string `json:"token" form:"token"`
}

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

// connect validates in, encrypts the key with Vault and stores the connection.
func (s *Server) connect(c *gin.Context, u *store.User, in ConnectInput) (*store.ProviderConnection, error) {
	prov, ok := providers.Lookup(strings.TrimSpace(in.ProviderID))
	if !ok {
		return nil, httperr.Invalid("providerId", "Unknown provider. Pick one of the providers listed on the Providers page.")
	}
	if prov.Supports(store.AuthWellKnown) {
		return s.connectWellKnown(c, u, prov, in)
	}
	conn := &store.ProviderConnection{UserID: u.ID, ProviderID: prov.ID, AuthType: store.AuthAPI}
	if prov.Custom {
		base, err := providers.ValidateBaseURL(in.BaseURL)
		if err != nil {
			return nil, fieldError(err)
		}
		models, err := providers.ValidateModelIDs(in.Models)
		if err != nil {
			return nil, fieldError(err)
		}
		conn.BaseURL, conn.ModelIDs = base, strings.Join(models, ",")
	}
	if err := prov.ValidateKey(in.APIKey); err != nil {
		return nil, fieldError(err)
	}
	ctx := c.Request.Context()
	if in.Verify {
		if err := s.Verifier.Verify(ctx, prov, in.APIKey, conn.BaseURL); err != nil {
			var fe *providers.FieldError
			if errors.As(err, &fe) {
				return nil, httperr.Invalid(fe.Field, fe.Message)
			}
			s.Log.Warn("key check failed", "provider_id", prov.ID, "error", err)
			return nil, &httperr.Error{Status: http.StatusBadGateway, Code: "provider_unreachable", Field: "apiKey",
				Message: "Could not ask " + prov.Name + " whether the key works. Try again, or connect without checking."}
		}
	}
	ct, version, err := s.Secrets.Encrypt(ctx, []byte(in.APIKey), secrets.ConnectionContext(u.ID, prov.ID, secrets.FieldAPIKey))
	if err != nil {
		return nil, err
	}
	conn.APIKeyCiphertext, conn.KeyVersion = ct, version
	conn.DisplayHint = "…" + in.APIKey[max(0, len(in.APIKey)-4):]
	return s.saveConnection(c, u, prov, in, conn)
}

// connectWellKnown validates an enterprise URL and token: doce reads the organisation's
// /.well-known/opencode for the token's variable and the models it defines, then stores the
// token encrypted.
func (s *Server) connectWellKnown(c *gin.Context, u *store.User, prov providers.Provider, in ConnectInput) (*store.ProviderConnection, error) {
	base, err := providers.ValidateBaseURL(in.WellKnownURL)
	if err != nil {
		return nil, httperr.Invalid("wellKnownUrl", "Enter your organisation's http(s) address, e.g. https://ai.example.com.")
	}
	if err := providers.ValidateToken(in.Token); err != nil {
		return nil, fieldError(err)
	}
	ctx := c.Request.Context()
	wk, err := providers.FetchWellKnown(ctx, s.Verifier.HTTP, base)
	if err != nil {
		return nil, fieldError(err)
	}
	ct, version, err := s.Secrets.Encrypt(ctx, []byte(in.Token), secrets.ConnectionContext(u.ID, prov.ID, secrets.FieldWellKnown))
	if err != nil {
		return nil, err
	}
	conn := &store.ProviderConnection{
		UserID: u.ID, ProviderID: prov.ID, AuthType: store.AuthWellKnown,
		WellKnownURL: base, WellKnownEnv: wk.Env, WellKnownCiphertext: ct, KeyVersion: version,
		ModelIDs: strings.Join(wk.Models, ","), DisplayHint: "…" + in.Token[max(0, len(in.Token)-4):],
	}
	return s.saveConnection(c, u, prov, in, conn)
}

// saveConnection stores a new connection, or replaces the existing one's secret when asked to.
func (s *Server) saveConnection(c *gin.Context, u *store.User, prov providers.Provider, in ConnectInput, conn *store.ProviderConnection) (*store.ProviderConnection, error) {
	ctx := c.Request.Context()
	existing, err := s.Store.Connection(ctx, u.ID, prov.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		existing = nil
	case err != nil:
		return nil, err
	case existing.Status == store.ConnRevoked:
		return nil, &httperr.Error{Status: http.StatusConflict, Code: "disconnecting", Field: "providerId",
			Message: prov.Name + " is being disconnected. Connect it again once that is done."}
	case !in.Replace:
		return nil, errAlreadyConnected(prov)
	}
	if existing != nil {
		conn.ID, conn.CreatedAt, conn.LastUsedAt = existing.ID, existing.CreatedAt, existing.LastUsedAt
		if err := s.Store.ReplaceConnectionSecret(ctx, conn); err != nil {
			return nil, err
		}
		s.Log.Info("provider credential replaced", "user_id", u.ID, "provider_id", prov.ID)
		// The key is stored; running projects get it from a workflow, which retries.
		if err := s.Setups.PushCredential(ctx, u.ID, prov.ID); err != nil {
			s.Log.Warn("replaced credential not handed to running projects", "user_id", u.ID, "provider_id", prov.ID, "error", err)
		}
		return conn, nil
	}
	if err := s.Store.CreateConnection(ctx, conn); errors.Is(err, store.ErrConflict) {
		return nil, errAlreadyConnected(prov)
	} else if err != nil {
		return nil, err
	}
	s.Log.Info("provider connected", "user_id", u.ID, "provider_id", prov.ID)
	return conn, nil
}

func errAlreadyConnected(prov providers.Provider) *httperr.Error {
	return &httperr.Error{Status: http.StatusConflict, Code: "already_connected", Field: "providerId",
		Message: prov.Name + " is already connected. Replace its key (replace: true, or tick Replace) or disconnect it first."}
}

// disconnect starts taking the caller's provider away from every project.
func (s *Server) disconnect(c *gin.Context) (*store.ProviderConnection, bool) {
	u := currentUser(c)
	conn, err := s.Store.Connection(c.Request.Context(), u.ID, c.Param("providerId"))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, httperr.NotFound("connection"))
		return nil, false
	} else if err != nil {
		s.fail(c, err)
		return nil, false
	}
	if err := s.Setups.Disconnect(c.Request.Context(), u.ID, conn.ProviderID, u.ID); err != nil {
		s.fail(c, err)
		return nil, false
	}
	conn.Status = store.ConnRevoked
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
	err := s.Store.SetPreferredProvider(c.Request.Context(), currentUser(c).ID, providerID)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, httperr.Invalid("preferredProviderId", "Connect that provider first; only a connected provider can be preferred."))
		return false
	} else if err != nil {
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

// fieldError turns a provider's or forge's complaint about one field into a 400.
func fieldError(err error) error {
	var fe *providers.FieldError
	if errors.As(err, &fe) {
		return httperr.Invalid(fe.Field, fe.Message)
	}
	var ffe *forges.FieldError
	if errors.As(err, &ffe) {
		return httperr.Invalid(ffe.Field, ffe.Message)
	}
	return err
}

func (s *Server) providersPage(c *gin.Context) {
	s.renderProviders(c, http.StatusOK, nil, ConnectInput{})
}

func (s *Server) renderProviders(c *gin.Context, status int, formErr *httperr.Error, in ConnectInput) {
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
	var in ConnectInput
	_ = c.ShouldBind(&in) // absent fields stay empty and fail validation below
	if _, err := s.connect(c, currentUser(c), in); err != nil {
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
	var in ConnectInput
	if !bindJSON(c, s, &in) {
		return
	}
	conn, err := s.connect(c, currentUser(c), in)
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
