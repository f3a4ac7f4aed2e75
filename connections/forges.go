package connections

import (
	"context"
	"errors"
	"net/http"

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

// ConnectForge checks in's token with the forge (who it signs in as), seals it with Vault to
// the new row and stores the connection; with in.Replace, to the existing connection's row,
// which then works again. replaced says it did that.
func (s *Service) ConnectForge(ctx context.Context, u *store.User, in ForgeInput) (f *store.ForgeConnection, replaced bool, err error) {
	base, err := forges.Normalize(in.Kind, in.BaseURL)
	if err != nil {
		return nil, false, fieldError(err)
	}
	if err := forges.ValidateToken(in.Token); err != nil {
		return nil, false, fieldError(err)
	}
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

// DisconnectForge deletes u's forge connection id.
func (s *Service) DisconnectForge(ctx context.Context, u *store.User, id string) error {
	if err := s.Store.DeleteForgeConnection(ctx, u.ID, id); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("forge connection")
	} else if err != nil {
		return err
	}
	s.Log.Info("forge disconnected", "user_id", u.ID, "forge_id", id)
	return nil
}
