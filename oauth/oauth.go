// Package oauth signs users in to providers with a device login and refreshes their tokens.
// Each provider's deviations from RFC 8628 and RFC 6749 live in its flow (github.go,
// openai.go); the rest of doce sees Start, Wait and Refresh.
package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/doce-dev/doce/providers"
)

// Errors a flow ends with that only the user can act on.
var (
	ErrDenied  = errors.New("oauth: the sign-in was denied")
	ErrExpired = errors.New("oauth: the code expired before the sign-in was finished")
	// ErrRefused means the provider turned the sign-in down for a reason polling again
	// cannot change (a code already used, an unknown client).
	ErrRefused = errors.New("oauth: the provider refused the sign-in")
	// ErrRevoked means the provider no longer accepts the refresh token (invalid_grant): the
	// user revoked access, or the token chain was broken. Only a new login helps.
	ErrRevoked = errors.New("oauth: the provider no longer accepts the refresh token")
)

// Pending is a started device login: what the user is shown, and when to give up.
type Pending struct {
	UserCode                string
	VerificationURI         string
	VerificationURIComplete string
	Interval                time.Duration
	ExpiresAt               time.Time
}

// Token is what a login or refresh yields. Access and Refresh are secrets.
type Token struct {
	Access  string
	Refresh string
	Expiry  time.Time // zero: the access token does not expire
	// AccountID is the account the token is for, where the provider says (ChatGPT).
	AccountID string
}

// String keeps tokens out of logs and error messages.
func (t Token) String() string {
	return fmt.Sprintf("oauth.Token{expiry:%s}", t.Expiry.Format(time.RFC3339))
}

// Flow is one provider's device login and refresh.
type Flow interface {
	// Start asks for a user code. secret is what polling needs (a device code): a bearer
	// credential until it expires, to be kept out of logs and workflow history.
	Start(ctx context.Context) (p Pending, secret string, err error)
	// Wait polls until the user finishes, at the interval the server asks for. It ends with
	// ErrDenied or ErrExpired when the user cannot finish any more.
	Wait(ctx context.Context, p Pending, secret string) (Token, error)
	// Refresh trades a refresh token for a new token; ErrRevoked when that can never work.
	Refresh(ctx context.Context, refresh string) (Token, error)
}

// Settings overrides a provider's defaults, per provider id. Empty maps keep the defaults.
type Settings struct {
	URLs      map[string]string // DOCE_OAUTH_URLS
	ClientIDs map[string]string // DOCE_OAUTH_CLIENT_IDS
	Scopes    map[string]string // DOCE_OAUTH_SCOPES, space-separated per provider
	HTTP      *http.Client
}

// ErrNoOAuth means the provider has no sign-in.
var ErrNoOAuth = errors.New("oauth: the provider has no sign-in")

// Flow returns the sign-in for providerID. enterprise is a GitHub Enterprise host or URL the
// user named ("" for the provider's own); see EnterpriseURL.
func (s *Settings) Flow(providerID, enterprise string) (Flow, error) {
	p, ok := providers.Lookup(providerID)
	if !ok || p.OAuth == nil {
		return nil, ErrNoOAuth
	}
	base := p.OAuth.URL
	if u := s.URLs[providerID]; u != "" {
		base = u
	}
	if enterprise != "" {
		if !p.OAuth.Enterprise {
			return nil, fmt.Errorf("oauth: %s has no enterprise hosts", p.Name)
		}
		u, err := EnterpriseURL(enterprise)
		if err != nil {
			return nil, err
		}
		base = u
	}
	clientID := p.OAuth.ClientID
	if id := s.ClientIDs[providerID]; id != "" {
		clientID = id
	}
	scopes := p.OAuth.Scopes
	if sc := s.Scopes[providerID]; sc != "" {
		scopes = strings.Fields(sc)
	}
	hc := s.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base = strings.TrimRight(base, "/")
	switch p.OAuth.Flow {
	case providers.FlowGitHubDevice:
		return newGitHub(base, clientID, scopes, hc), nil
	case providers.FlowOpenAIDevice:
		return newOpenAI(base, clientID, scopes, hc), nil
	}
	return nil, fmt.Errorf("oauth: unknown flow %q", p.OAuth.Flow)
}

// EnterpriseURL turns what a user typed for their GitHub Enterprise host ("company.ghe.com",
// "https://company.ghe.com/") into the URL the flow uses. Plain http is refused except on
// loopback: the login carries a token.
func EnterpriseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > 253 {
		return "", fmt.Errorf("oauth: enter your GitHub Enterprise host, e.g. company.ghe.com")
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", fmt.Errorf("oauth: %q is not a host such as company.ghe.com", raw)
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())) {
		return "", fmt.Errorf("oauth: %q must use https", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// EnterpriseHost is the form OpenCode stores as enterpriseUrl: the host without scheme.
func EnterpriseHost(enterpriseURL string) string {
	u, err := url.Parse(enterpriseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// withClient makes x/oauth2 use hc.
func withClient(ctx context.Context, hc *http.Client) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, hc)
}

// refreshWith runs x/oauth2's refresh_token grant and maps a refused grant to ErrRevoked.
func refreshWith(ctx context.Context, cfg *oauth2.Config, hc *http.Client, refresh string) (*oauth2.Token, error) {
	// An expired token with only the refresh token set makes the source refresh at once.
	tok, err := cfg.TokenSource(withClient(ctx, hc), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			switch re.ErrorCode {
			case "invalid_grant", "bad_refresh_token", "unauthorized_client":
				return nil, ErrRevoked
			}
			// Report the code only: a body may echo what was sent.
			return nil, fmt.Errorf("oauth: refresh refused: HTTP %d %s", re.Response.StatusCode, re.ErrorCode)
		}
		return nil, fmt.Errorf("oauth: refresh failed: %w", err)
	}
	return tok, nil
}
