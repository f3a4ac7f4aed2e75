package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

// github is RFC 8628 at GitHub's paths. GitHub answers OAuth errors (authorization_pending,
// slow_down, ...) with HTTP 200 and an error body; x/oauth2 reads an "error" field in any
// answer as a RetrieveError, so the standard client copes. An OAuth app's token does not
// expire and comes without a refresh token; a GitHub App may issue an expiring pair.
type github struct {
	cfg oauth2.Config
	hc  *http.Client
}

func newGitHub(base, clientID string, scopes []string, hc *http.Client) *github {
	return &github{hc: hc, cfg: oauth2.Config{
		ClientID: clientID,
		Scopes:   scopes,
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: base + "/login/device/code",
			TokenURL:      base + "/login/oauth/access_token",
			AuthStyle:     oauth2.AuthStyleInParams, // a public client: client_id in the form
		},
	}}
}

func (g *github) Start(ctx context.Context) (Pending, string, error) {
	da, err := g.cfg.DeviceAuth(withClient(ctx, g.hc))
	if err != nil {
		return Pending{}, "", fmt.Errorf("oauth: the device login could not be started: %w", err)
	}
	return Pending{
		UserCode:                da.UserCode,
		VerificationURI:         da.VerificationURI,
		VerificationURIComplete: da.VerificationURIComplete,
		Interval:                time.Duration(max(da.Interval, 1)) * time.Second,
		ExpiresAt:               da.Expiry,
	}, da.DeviceCode, nil
}

func (g *github) Wait(ctx context.Context, p Pending, secret string) (Token, error) {
	da := &oauth2.DeviceAuthResponse{DeviceCode: secret, Interval: int64(p.Interval / time.Second), Expiry: p.ExpiresAt}
	tok, err := g.cfg.DeviceAccessToken(withClient(ctx, g.hc), da)
	if err != nil {
		return Token{}, waitError(err, p)
	}
	return Token{Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: tok.Expiry}, nil
}

func (g *github) Refresh(ctx context.Context, refresh string) (Token, error) {
	tok, err := refreshWith(ctx, &g.cfg, g.hc, refresh)
	if err != nil {
		return Token{}, err
	}
	return Token{Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: tok.Expiry}, nil
}

// waitError maps the end of a device poll to ErrDenied or ErrExpired where it is one.
func waitError(err error, p Pending) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		switch re.ErrorCode {
		case "access_denied":
			return ErrDenied
		case "expired_token", "token_expired", "incorrect_device_code":
			return ErrExpired
		}
		return fmt.Errorf("%w: %s", ErrRefused, re.ErrorCode)
	}
	// x/oauth2 stops polling at the code's expiry with the context's deadline error.
	if errors.Is(err, context.DeadlineExceeded) && !p.ExpiresAt.IsZero() && !time.Now().Before(p.ExpiresAt) {
		return ErrExpired
	}
	return err
}
