package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// ForgeInput connects a git forge, from the form or the API.
type ForgeInput struct {
	Kind    string `json:"kind" form:"kind"`
	BaseURL string `json:"baseURL" form:"baseURL"` // empty: github.com or gitlab.com
	Token   string `json:"token" form:"token"`
	// Replace swaps the token of the connection to this forge (one the forge refused, say);
	// without it a second connection is refused.
	Replace bool `json:"replace" form:"replace"`
}

// ForgeView is a forge connection as its owner sees it: never the token, only a hint.
type ForgeView struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Forge       string `json:"forgeName"`
	BaseURL     string `json:"baseURL"`
	Account     string `json:"account"`
	AccountName string `json:"accountName,omitempty"`
	DisplayHint string `json:"displayHint"`
	// Status is "connected", or "needs-token" once the forge refused the token on a push, pull
	// or import (at TokenRefusedAt) until it is replaced.
	Status         string     `json:"status"`
	TokenRefusedAt *time.Time `json:"tokenRefusedAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
}

func forgeView(f store.ForgeConnection) ForgeView {
	v := ForgeView{ID: f.ID, Kind: f.Kind, Forge: forges.Name(f.Kind), BaseURL: f.BaseURL, Account: f.AccountLogin,
		AccountName: f.AccountName, DisplayHint: f.DisplayHint, Status: "connected", TokenRefusedAt: f.TokenRefusedAt, CreatedAt: f.CreatedAt}
	if f.TokenRefusedAt != nil {
		v.Status = "needs-token"
	}
	return v
}

// connectForge checks in's token with the forge (who it signs in as), seals it with Vault to
// the new row and stores the connection; with in.Replace, to the existing connection's row,
// which then works again. replaced says it did that.
func (s *Server) connectForge(c *gin.Context, u *store.User, in ForgeInput) (f *store.ForgeConnection, replaced bool, err error) {
	base, err := forges.Normalize(in.Kind, in.BaseURL)
	if err != nil {
		return nil, false, fieldError(err)
	}
	if err := forges.ValidateToken(in.Token); err != nil {
		return nil, false, fieldError(err)
	}
	ctx := c.Request.Context()
	// Refuse a second connection before asking the forge; the unique key settles a race.
	conns, err := s.Store.ForgeConnectionsByUser(ctx, u.ID)
	if err != nil {
		return nil, false, err
	}
	var existing *store.ForgeConnection
	for i := range conns {
		if conns[i].BaseURL == base {
			existing = &conns[i]
		}
	}
	switch {
	case existing != nil && !in.Replace:
		return nil, false, errForgeConnected(base)
	case existing != nil && existing.Kind != in.Kind:
		return nil, false, &httperr.Error{Status: http.StatusBadRequest, Code: "invalid_input", Field: "kind",
			Message: base + " is connected as " + forges.Name(existing.Kind) + ": replace its token as such, or disconnect it first."}
	case existing == nil && in.Replace:
		return nil, false, &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Field: "baseURL",
			Message: base + " is not connected, so it has no token to replace: connect it without replace."}
	}
	acct, err := forges.Check(ctx, in.Kind, base, in.Token, s.Outbound)
	if err != nil {
		return nil, false, fieldError(err)
	}
	f = &store.ForgeConnection{ID: store.NewID(), UserID: u.ID, Kind: in.Kind, BaseURL: base}
	if existing != nil {
		f = existing
	}
	f.AccountLogin, f.AccountName, f.DisplayHint = acct.Login, acct.Name, "…"+in.Token[max(0, len(in.Token)-4):]
	f.TokenCiphertext, f.KeyVersion, err = s.Secrets.Encrypt(ctx, []byte(in.Token), secrets.ForgeContext(u.ID, f.ID))
	if err != nil {
		return nil, false, err
	}
	if existing != nil {
		if err := s.Store.ReplaceForgeToken(ctx, f); err != nil {
			return nil, false, err
		}
		s.Log.Info("forge token replaced", "user_id", u.ID, "forge_id", f.ID, "kind", f.Kind, "base_url", f.BaseURL, "account", f.AccountLogin)
		return f, true, nil
	}
	if err := s.Store.CreateForgeConnection(ctx, f); errors.Is(err, store.ErrConflict) {
		return nil, false, errForgeConnected(base)
	} else if err != nil {
		return nil, false, err
	}
	s.Log.Info("forge connected", "user_id", u.ID, "forge_id", f.ID, "kind", f.Kind, "base_url", f.BaseURL, "account", f.AccountLogin)
	return f, false, nil
}

func errForgeConnected(base string) *httperr.Error {
	return &httperr.Error{Status: http.StatusConflict, Code: "already_connected", Field: "baseURL",
		Message: base + " is already connected. Replace its token (replace: true, or the Replace token form beside it), or disconnect it first."}
}

// disconnectForge deletes the caller's forge connection named in the path.
func (s *Server) disconnectForge(c *gin.Context) error {
	u := currentUser(c)
	id := c.Param("id")
	if err := s.Store.DeleteForgeConnection(c.Request.Context(), u.ID, id); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("forge connection")
	} else if err != nil {
		return err
	}
	s.Log.Info("forge disconnected", "user_id", u.ID, "forge_id", id)
	return nil
}

func (s *Server) forgeViews(c *gin.Context) ([]ForgeView, error) {
	fs, err := s.Store.ForgeConnectionsByUser(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		return nil, err
	}
	views := make([]ForgeView, 0, len(fs))
	for _, f := range fs {
		views = append(views, forgeView(f))
	}
	return views, nil
}

func (s *Server) apiForges(c *gin.Context) {
	views, err := s.forgeViews(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"forges": views})
}

func (s *Server) apiConnectForge(c *gin.Context) {
	var in ForgeInput
	if !bindJSON(c, s, &in) {
		return
	}
	f, replaced, err := s.connectForge(c, currentUser(c), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if replaced {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"forge": forgeView(*f)})
}

func (s *Server) apiDisconnectForge(c *gin.Context) {
	if err := s.disconnectForge(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) forgesPage(c *gin.Context) {
	s.renderForges(c, http.StatusOK, nil, ForgeInput{Kind: forges.GitHub})
}

func (s *Server) renderForges(c *gin.Context, status int, formErr *httperr.Error, in ForgeInput) {
	views, err := s.forgeViews(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	in.Token = "" // never echo a secret back into the form
	s.render(c, status, "forges.html", gin.H{"Title": "Git forges", "Forges": views, "Kinds": forges.Kinds, "Form": in, "Error": formErr})
}

func (s *Server) connectForgeSubmit(c *gin.Context) {
	var in ForgeInput
	_ = c.ShouldBind(&in) // absent fields stay empty and fail validation
	if _, _, err := s.connectForge(c, currentUser(c), in); err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderForges(c, e.Status, e, in)
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/forges")
}

func (s *Server) disconnectForgeSubmit(c *gin.Context) {
	if err := s.disconnectForge(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/forges")
}

// fieldError turns a forge's complaint about one field into a 400.
func fieldError(err error) error {
	var fe *forges.FieldError
	if errors.As(err, &fe) {
		return httperr.Invalid(fe.Field, fe.Message)
	}
	return err
}
