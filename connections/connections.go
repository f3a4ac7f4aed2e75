// Package connections is how a user's connections are made and unmade, whoever asks: to LLM
// providers (an API key or an organisation's well-known token, checked, sealed with Vault and
// stored; a replaced key, a disconnect, the preferred provider, device sign-ins) and to git
// forges (a token checked with the forge, sealed, replaced or deleted). It takes a
// context.Context and plain values and knows nothing of HTTP: its refusals are httperr errors
// the caller shows as they are.
package connections

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Service acts on provider connections. Its fields are its dependencies.
type Service struct {
	Store    *store.Store
	Secrets  *secrets.Transit
	Setups   *setups.Service
	Verifier *providers.Verifier
	// Outbound makes the requests to forges users name, under the outbound policy.
	Outbound *http.Client
	Log      *slog.Logger
}

// Input is what connecting a provider takes, from the form or the API.
type Input struct {
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

// Connect validates in, encrypts the key with Vault and stores u's connection.
func (s *Service) Connect(ctx context.Context, u *store.User, in Input) (*store.ProviderConnection, error) {
	prov, ok := providers.Lookup(strings.TrimSpace(in.ProviderID))
	if !ok {
		return nil, httperr.Invalid("providerId", "Unknown provider. Pick one of the providers listed on the Providers page.")
	}
	if prov.Supports(store.AuthWellKnown) {
		return s.connectWellKnown(ctx, u, prov, in)
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
	return s.save(ctx, u, prov, in, conn)
}

// connectWellKnown validates an enterprise URL and token: doce reads the organisation's
// /.well-known/opencode for the token's variable and the models it defines, then stores the
// token encrypted.
func (s *Service) connectWellKnown(ctx context.Context, u *store.User, prov providers.Provider, in Input) (*store.ProviderConnection, error) {
	base, err := providers.ValidateBaseURL(in.WellKnownURL)
	if err != nil {
		return nil, httperr.Invalid("wellKnownUrl", "Enter your organisation's http(s) address, e.g. https://ai.example.com.")
	}
	if err := providers.ValidateToken(in.Token); err != nil {
		return nil, fieldError(err)
	}
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
	return s.save(ctx, u, prov, in, conn)
}

// save stores a new connection, or replaces the existing one's secret when asked to.
func (s *Service) save(ctx context.Context, u *store.User, prov providers.Provider, in Input, conn *store.ProviderConnection) (*store.ProviderConnection, error) {
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

// Disconnect starts taking u's provider away from every project; the connection it returns is
// revoked until that is done.
func (s *Service) Disconnect(ctx context.Context, u *store.User, providerID string) (*store.ProviderConnection, error) {
	conn, err := s.Store.Connection(ctx, u.ID, providerID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, httperr.NotFound("connection")
	} else if err != nil {
		return nil, err
	}
	if err := s.Setups.Disconnect(ctx, u.ID, conn.ProviderID, u.ID); err != nil {
		return nil, err
	}
	conn.Status = store.ConnRevoked
	return conn, nil
}

// SetPreferred makes providerID the provider u's new projects use by default.
func (s *Service) SetPreferred(ctx context.Context, u *store.User, providerID string) error {
	err := s.Store.SetPreferredProvider(ctx, u.ID, providerID)
	if errors.Is(err, store.ErrNotFound) {
		return httperr.Invalid("preferredProviderId", "Connect that provider first; only a connected provider can be preferred.")
	}
	return err
}

// SignIn checks that u may sign in to providerID (enterpriseURL: a GitHub Enterprise host, for
// providers that have them) and starts the device login; the status it returns carries the
// user code once the provider gave one.
func (s *Service) SignIn(ctx context.Context, u *store.User, providerID, enterpriseURL string) (providers.Provider, workflows.LoginStatus, error) {
	prov, ok := providers.Lookup(providerID)
	if !ok {
		return prov, workflows.LoginStatus{}, httperr.NotFound("provider")
	}
	if prov.OAuth == nil {
		return prov, workflows.LoginStatus{}, httperr.Invalid("providerId", prov.Name+" has no sign-in; connect it with a key.")
	}
	if enterpriseURL != "" {
		if !prov.OAuth.Enterprise {
			return prov, workflows.LoginStatus{}, httperr.Invalid("enterpriseUrl", prov.Name+" has no enterprise hosts; leave the field empty.")
		}
		if _, err := oauth.EnterpriseURL(enterpriseURL); err != nil {
			return prov, workflows.LoginStatus{}, httperr.Invalid("enterpriseUrl", "Enter your GitHub Enterprise host, e.g. company.ghe.com (https).")
		}
	}
	if existing, err := s.Store.Connection(ctx, u.ID, prov.ID); err == nil && existing.Status == store.ConnRevoked {
		return prov, workflows.LoginStatus{}, &httperr.Error{Status: http.StatusConflict, Code: "disconnecting", Field: "providerId",
			Message: prov.Name + " is being disconnected. Sign in again once that is done."}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return prov, workflows.LoginStatus{}, err
	}
	st, err := s.Setups.StartLogin(ctx, workflows.LoginInput{UserID: u.ID, ProviderID: prov.ID, Enterprise: enterpriseURL}, 5*time.Second)
	if err != nil {
		return prov, st, err
	}
	s.Log.Info("sign-in started", "user_id", u.ID, "provider_id", prov.ID)
	return prov, st, nil
}

// SignInStatus is where u's latest sign-in to providerID stands.
func (s *Service) SignInStatus(ctx context.Context, u *store.User, providerID string) (providers.Provider, workflows.LoginStatus, error) {
	prov, ok := providers.Lookup(providerID)
	if !ok || prov.OAuth == nil {
		return prov, workflows.LoginStatus{}, httperr.NotFound("sign-in")
	}
	st, err := s.Setups.LoginStatus(ctx, u.ID, prov.ID)
	if errors.Is(err, setups.ErrNoLogin) {
		return prov, st, httperr.NotFound("sign-in")
	}
	return prov, st, err
}
