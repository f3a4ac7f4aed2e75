package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// OAuth runs device logins and token refreshes. Tokens are sealed by Vault Transit before
// they are stored; no activity returns one.
type OAuth struct {
	Store   *store.Store
	Secrets Cipher
	Flows   *oauth.Settings
	Metrics *metrics.Metrics // optional
}

func (a *OAuth) countRefresh(providerID, outcome string) {
	if a.Metrics != nil {
		a.Metrics.OAuthRefreshes.WithLabelValues(providerID, outcome).Inc()
	}
}

func (a *OAuth) countLogin(providerID, outcome string) {
	if a.Metrics != nil {
		a.Metrics.OAuthLogins.WithLabelValues(providerID, outcome).Inc()
	}
}

func (a *OAuth) flow(providerID, enterpriseURL string) (oauth.Flow, error) {
	f, err := a.Flows.Flow(providerID, enterpriseURL)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), workflows.ErrTypeBadInput, nil)
	}
	return f, nil
}

// DeviceStart asks the provider for a user code. The device code comes back sealed.
func (a *OAuth) DeviceStart(ctx context.Context, in workflows.LoginInput) (workflows.LoginStarted, error) {
	f, err := a.flow(in.ProviderID, in.Enterprise)
	if err != nil {
		return workflows.LoginStarted{}, err
	}
	p, secret, err := f.Start(ctx)
	if err != nil {
		return workflows.LoginStarted{}, err
	}
	ct, _, err := a.Secrets.Encrypt(ctx, []byte(secret), secrets.LoginContext(in.UserID, in.ProviderID))
	if err != nil {
		return workflows.LoginStarted{}, err
	}
	return workflows.LoginStarted{
		UserCode: p.UserCode, VerificationURI: p.VerificationURI, VerificationURIComplete: p.VerificationURIComplete,
		Interval: p.Interval, ExpiresAt: p.ExpiresAt, SecretCiphertext: ct,
	}, nil
}

// DeviceWait polls until the user finishes signing in, then seals the tokens and stores them
// as the user's connection.
func (a *OAuth) DeviceWait(ctx context.Context, in workflows.LoginWaitInput) (workflows.TokenInfo, error) {
	f, err := a.flow(in.Login.ProviderID, in.Login.Enterprise)
	if err != nil {
		return workflows.TokenInfo{}, err
	}
	// Heartbeat from the start: the decrypt may wait out a Vault restart for longer than the
	// heartbeat timeout.
	stop := heartbeatWhile(ctx)
	defer stop()
	secret, err := a.Secrets.Decrypt(ctx, in.Started.SecretCiphertext, secrets.LoginContext(in.Login.UserID, in.Login.ProviderID))
	if err != nil {
		return workflows.TokenInfo{}, err
	}
	p := oauth.Pending{UserCode: in.Started.UserCode, VerificationURI: in.Started.VerificationURI,
		Interval: in.Started.Interval, ExpiresAt: in.Started.ExpiresAt}
	tok, err := f.Wait(ctx, p, string(secret))
	switch {
	case errors.Is(err, oauth.ErrDenied):
		a.countLogin(in.Login.ProviderID, "denied")
		return workflows.TokenInfo{}, temporal.NewNonRetryableApplicationError("The sign-in was denied.", workflows.ErrTypeLoginDenied, nil)
	case errors.Is(err, oauth.ErrExpired):
		a.countLogin(in.Login.ProviderID, "expired")
		return workflows.TokenInfo{}, temporal.NewNonRetryableApplicationError("The code expired before the sign-in was finished. Start again.", workflows.ErrTypeLoginExpired, nil)
	case errors.Is(err, oauth.ErrRefused):
		a.countLogin(in.Login.ProviderID, "refused")
		return workflows.TokenInfo{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s refused the sign-in (%s). Start again.", providerName(in.Login.ProviderID), strings.TrimPrefix(err.Error(), oauth.ErrRefused.Error()+": ")),
			workflows.ErrTypeLoginRefused, nil)
	case err != nil:
		return workflows.TokenInfo{}, err
	}
	c := &store.ProviderConnection{UserID: in.Login.UserID, ProviderID: in.Login.ProviderID}
	if in.Login.Enterprise != "" {
		c.OAuthEnterpriseURL, _ = oauth.EnterpriseURL(in.Login.Enterprise) // valid: the flow was made from it
	}
	c.DisplayHint = loginHint(c.OAuthEnterpriseURL, tok)
	if err := a.seal(ctx, c, tok); err != nil {
		return workflows.TokenInfo{}, err
	}
	if err := a.Store.SaveOAuthConnection(ctx, c); err != nil {
		return workflows.TokenInfo{}, err
	}
	a.countLogin(in.Login.ProviderID, "connected")
	return tokenInfo(c), nil
}

// loginHint is how the settings page names the account, without any part of a token.
func loginHint(enterpriseURL string, tok oauth.Token) string {
	switch {
	case enterpriseURL != "":
		return "signed in at " + oauth.EnterpriseHost(enterpriseURL)
	case tok.AccountID != "":
		return "signed in, account …" + tail(tok.AccountID, 6)
	}
	return "signed in"
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// seal encrypts tok into c, each field bound to the user, provider and field.
func (a *OAuth) seal(ctx context.Context, c *store.ProviderConnection, tok oauth.Token) error {
	access, v, err := a.Secrets.Encrypt(ctx, []byte(tok.Access), secrets.ConnectionContext(c.UserID, c.ProviderID, secrets.FieldOAuthAccess))
	if err != nil {
		return err
	}
	c.OAuthAccessCiphertext, c.KeyVersion = access, v
	c.OAuthRefreshCiphertext = ""
	if tok.Refresh != "" {
		if c.OAuthRefreshCiphertext, _, err = a.Secrets.Encrypt(ctx, []byte(tok.Refresh), secrets.ConnectionContext(c.UserID, c.ProviderID, secrets.FieldOAuthRefresh)); err != nil {
			return err
		}
	}
	c.OAuthExpiresAt = nil
	if !tok.Expiry.IsZero() {
		e := tok.Expiry.UTC()
		c.OAuthExpiresAt = &e
	}
	if tok.AccountID != "" {
		c.OAuthAccountID = tok.AccountID
	}
	return nil
}

func tokenInfo(c *store.ProviderConnection) workflows.TokenInfo {
	t := workflows.TokenInfo{
		Active:  c.AuthType == store.AuthOAuth && c.Status == store.ConnConnected && c.OAuthAccessCiphertext != "",
		SavedAt: c.UpdatedAt,
	}
	if c.OAuthExpiresAt != nil && c.OAuthRefreshCiphertext != "" {
		t.ExpiresAt = *c.OAuthExpiresAt // only a token that can be refreshed is planned for
	}
	return t
}

// RefreshPlan reads when the connection's token expires.
func (a *OAuth) RefreshPlan(ctx context.Context, ref workflows.ConnectionRef) (workflows.TokenInfo, error) {
	c, err := a.Store.Connection(ctx, ref.UserID, ref.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return workflows.TokenInfo{}, nil
	} else if err != nil {
		return workflows.TokenInfo{}, err
	}
	return tokenInfo(c), nil
}

// Refresh trades the refresh token for a new pair and stores it before anything else: the
// provider may have rotated the refresh token, and the old one no longer works. A token that
// no longer expires at in.ExpiresAt was refreshed already (a retry after the store, or a new
// login) and is left alone. A refused refresh marks the connection expired.
func (a *OAuth) Refresh(ctx context.Context, in workflows.RefreshStepInput) (workflows.TokenInfo, error) {
	c, err := a.Store.Connection(ctx, in.Ref.UserID, in.Ref.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return workflows.TokenInfo{}, nil
	} else if err != nil {
		return workflows.TokenInfo{}, err
	}
	info := tokenInfo(c)
	if !info.Active || !info.ExpiresAt.Equal(in.ExpiresAt) {
		return info, nil
	}
	f, err := a.flow(c.ProviderID, c.OAuthEnterpriseURL)
	if err != nil {
		return workflows.TokenInfo{}, err
	}
	stop := heartbeatWhile(ctx)
	defer stop()
	refresh, err := a.Secrets.Decrypt(ctx, c.OAuthRefreshCiphertext, secrets.ConnectionContext(c.UserID, c.ProviderID, secrets.FieldOAuthRefresh))
	if err != nil {
		return workflows.TokenInfo{}, err
	}
	tok, err := f.Refresh(ctx, string(refresh))
	switch {
	case errors.Is(err, oauth.ErrRevoked):
		a.countRefresh(c.ProviderID, "revoked")
	case err != nil:
		a.countRefresh(c.ProviderID, "error")
	default:
		a.countRefresh(c.ProviderID, "refreshed")
	}
	if errors.Is(err, oauth.ErrRevoked) {
		msg := fmt.Sprintf("%s no longer accepts this sign-in. Log in again on the Providers page.", providerName(c.ProviderID))
		if err := a.Store.ExpireConnection(ctx, c, msg); err != nil {
			return workflows.TokenInfo{}, err
		}
		return workflows.TokenInfo{}, temporal.NewNonRetryableApplicationError(msg, workflows.ErrTypeGrantRevoked, nil)
	} else if err != nil {
		return workflows.TokenInfo{}, err
	}
	oldExpiry := *c.OAuthExpiresAt // set: tokenInfo planned with it
	if err := a.seal(ctx, c, tok); err != nil {
		return workflows.TokenInfo{}, err
	}
	if stored, err := a.Store.UpdateOAuthTokens(ctx, c, oldExpiry); err != nil {
		return workflows.TokenInfo{}, err
	} else if !stored {
		return a.RefreshPlan(ctx, in.Ref) // a new login came first; it holds the newer token
	}
	return tokenInfo(c), nil
}

func providerName(id string) string {
	if p, ok := providers.Lookup(id); ok {
		return p.Name
	}
	return id
}
