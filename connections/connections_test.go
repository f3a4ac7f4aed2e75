package connections

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// newService is a Service on a real database, without Vault or Temporal: what the tests below
// reach is refused before either is asked.
func newService(t *testing.T) (*Service, *store.User) {
	t.Helper()
	st := storetest.Open(t, storetest.SQLite)
	u := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}
	if err := st.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return &Service{Store: st, Setups: &setups.Service{Store: st}, Verifier: &providers.Verifier{},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, u
}

func refused(t *testing.T, what string, err error, status int, code, field string) {
	t.Helper()
	var e *httperr.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code || e.Field != field {
		t.Errorf("%s: got %v (%+v), want %d %s on %q", what, err, e, status, code, field)
	}
}

// Connect names the field at fault, and refuses a second connection to a provider unless asked
// to replace its key, and any while the provider is being disconnected.
func TestConnectRefusals(t *testing.T) {
	s, u := newService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		what  string
		in    Input
		field string
	}{
		{"unknown provider", Input{ProviderID: "nope", APIKey: "sk-123456789012345678901234"}, "providerId"},
		{"key of the wrong shape", Input{ProviderID: "anthropic", APIKey: "sk-or-123456789012345678"}, "apiKey"},
		{"custom without base URL", Input{ProviderID: "custom", APIKey: "k-123456789012", Models: "m"}, "baseURL"},
		{"well-known without URL", Input{ProviderID: providers.WellKnownID, Token: "t-123456789012"}, "wellKnownUrl"},
	} {
		_, err := s.Connect(ctx, u, tc.in)
		refused(t, tc.what, err, http.StatusBadRequest, "invalid", tc.field)
	}

	conn := &store.ProviderConnection{UserID: u.ID, ProviderID: "anthropic", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:x"}
	if err := s.Store.CreateConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	prov, _ := providers.Lookup("anthropic")
	_, err := s.save(ctx, u, prov, Input{}, &store.ProviderConnection{UserID: u.ID, ProviderID: "anthropic", AuthType: store.AuthAPI})
	refused(t, "second connection", err, http.StatusConflict, "already_connected", "providerId")
}

// SetPreferred takes only a connected provider; Disconnect of none is 404.
func TestPreferredAndDisconnect(t *testing.T) {
	s, u := newService(t)
	ctx := context.Background()
	refused(t, "preferred not connected", s.SetPreferred(ctx, u, "anthropic"), http.StatusBadRequest, "invalid", "preferredProviderId")
	_, err := s.Disconnect(ctx, u, "anthropic")
	refused(t, "disconnect not connected", err, http.StatusNotFound, "not_found", "")

	for _, id := range []string{"anthropic", "openai"} {
		if err := s.Store.CreateConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: id, AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:x"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPreferred(ctx, u, "openai"); err != nil {
		t.Fatal(err)
	}
	if set, err := s.Store.Settings(ctx, u.ID); err != nil || set.PreferredProviderID != "openai" {
		t.Fatalf("preferred %q (%v), want openai", set.PreferredProviderID, err)
	}
}

// SignIn is only for providers with a device login, and enterprise hosts only where they exist.
func TestSignInRefusals(t *testing.T) {
	s, u := newService(t)
	ctx := context.Background()
	_, _, err := s.SignIn(ctx, u, "nope", "")
	refused(t, "unknown provider", err, http.StatusNotFound, "not_found", "")
	_, _, err = s.SignIn(ctx, u, "anthropic", "")
	refused(t, "no sign-in", err, http.StatusBadRequest, "invalid", "providerId")
	_, _, err = s.SignIn(ctx, u, "openai", "company.ghe.com")
	refused(t, "enterprise where none", err, http.StatusBadRequest, "invalid", "enterpriseUrl")
	_, _, err = s.SignIn(ctx, u, "github-copilot", "http://[::1")
	refused(t, "bad enterprise host", err, http.StatusBadRequest, "invalid", "enterpriseUrl")
	_, _, err = s.SignInStatus(ctx, u, "anthropic")
	refused(t, "status of no sign-in", err, http.StatusNotFound, "not_found", "")
}
