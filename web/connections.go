package web

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

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
}

// ConnectionView is a connection as shown to its owner: never the secret, only a hint.
type ConnectionView struct {
	ID          string     `json:"id"`
	ProviderID  string     `json:"providerId"`
	Provider    string     `json:"providerName"`
	AuthType    string     `json:"authType"`
	Status      string     `json:"status"`
	DisplayHint string     `json:"displayHint"`
	BaseURL     string     `json:"baseURL,omitempty"`
	Models      []string   `json:"models,omitempty"`
	LastUsedAt  *time.Time `json:"lastUsedAt"`
	CreatedAt   time.Time  `json:"createdAt"`
}

func connectionView(c store.ProviderConnection) ConnectionView {
	p, _ := providers.Lookup(c.ProviderID)
	return ConnectionView{
		ID: c.ID, ProviderID: c.ProviderID, Provider: p.Name, AuthType: c.AuthType, Status: c.Status,
		DisplayHint: c.DisplayHint, BaseURL: c.BaseURL, Models: c.Models(), LastUsedAt: c.LastUsedAt, CreatedAt: c.CreatedAt,
	}
}

// connect validates in, encrypts the key with Vault and stores the connection.
func (s *Server) connect(c *gin.Context, u *store.User, in ConnectInput) (*store.ProviderConnection, error) {
	prov, ok := providers.Lookup(strings.TrimSpace(in.ProviderID))
	if !ok {
		return nil, errBadRequest("providerId", "Unknown provider. Pick one of the providers listed in Settings.")
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
	if _, err := s.Store.Connection(ctx, u.ID, prov.ID); err == nil {
		return nil, &Error{Status: http.StatusConflict, Code: "already_connected", Field: "providerId",
			Message: prov.Name + " is already connected. Disconnect it first to use another key."}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	ct, version, err := s.Secrets.Encrypt(ctx, []byte(in.APIKey), secrets.ConnectionContext(u.ID, prov.ID, secrets.FieldAPIKey))
	if err != nil {
		return nil, err
	}
	conn.APIKeyCiphertext, conn.KeyVersion = ct, version
	conn.DisplayHint = "…" + in.APIKey[max(0, len(in.APIKey)-4):]
	if err := s.Store.CreateConnection(ctx, conn); errors.Is(err, store.ErrConflict) {
		return nil, &Error{Status: http.StatusConflict, Code: "already_connected", Field: "providerId",
			Message: prov.Name + " is already connected. Disconnect it first to use another key."}
	} else if err != nil {
		return nil, err
	}
	s.Log.Info("provider connected", "user_id", u.ID, "provider_id", prov.ID)
	return conn, nil
}

func fieldError(err error) error {
	var fe *providers.FieldError
	if errors.As(err, &fe) {
		return errBadRequest(fe.Field, fe.Message)
	}
	return err
}

func (s *Server) providersPage(c *gin.Context) {
	s.renderProviders(c, http.StatusOK, nil, ConnectInput{})
}

func (s *Server) renderProviders(c *gin.Context, status int, formErr *Error, in ConnectInput) {
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
	in.APIKey = "" // never echo a secret back into the form
	s.render(c, status, "providers.html", gin.H{
		"Title": "Providers", "Connections": views, "Catalog": providers.All(), "Form": in, "Error": formErr,
	})
}

func (s *Server) connectSubmit(c *gin.Context) {
	var in ConnectInput
	_ = c.ShouldBind(&in) // absent fields stay empty and fail validation below
	if _, err := s.connect(c, currentUser(c), in); err != nil {
		e := s.public(c, err)
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
	c.JSON(http.StatusCreated, gin.H{"connection": connectionView(*conn)})
}

// maxJSONBody bounds API request bodies; the largest legitimate one is a prompt.
const maxJSONBody = 256 << 10

func bindJSON(c *gin.Context, s *Server, v any) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxJSONBody)
	if err := c.ShouldBindJSON(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "The request body is over 256 KiB."})
		} else {
			s.fail(c, errBadRequest("", "The body is not valid JSON for this request: send a JSON object with the documented fields."))
		}
		return false
	}
	return true
}
