package oauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// openai is ChatGPT's device login as OpenCode's "ChatGPT Pro/Plus (headless)" method does it,
// which is not RFC 8628: a user code from /api/accounts/deviceauth/usercode, polled at
// /api/accounts/deviceauth/token (403 or 404 while the user has not finished) for an
// authorization code and PKCE verifier, which /oauth/token exchanges like any code. Refresh is
// the standard grant. The account id OpenCode sends with each request is read from the tokens.
type openai struct {
	base string
	cfg  oauth2.Config
	hc   *http.Client
}

// openAILoginTTL bounds a ChatGPT login: the usercode answer carries no expiry.
const openAILoginTTL = 15 * time.Minute

func newOpenAI(base, clientID string, scopes []string, hc *http.Client) *openai {
	return &openai{base: base, hc: hc, cfg: oauth2.Config{
		ClientID:    clientID,
		Scopes:      scopes,
		RedirectURL: base + "/deviceauth/callback",
		Endpoint:    oauth2.Endpoint{TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams},
	}}
}

// openAIDevice is the secret half of a pending login: both values are needed to poll.
type openAIDevice struct {
	DeviceAuthID string `json:"device_auth_id"`
	UserCode     string `json:"user_code"`
}

func (o *openai) Start(ctx context.Context) (Pending, string, error) {
	var out struct {
		DeviceAuthID string          `json:"device_auth_id"`
		UserCode     string          `json:"user_code"`
		Interval     json.RawMessage `json:"interval"` // "5" or 5
	}
	status, err := o.post(ctx, "/api/accounts/deviceauth/usercode", map[string]string{"client_id": o.cfg.ClientID}, &out)
	if err != nil {
		return Pending{}, "", err
	}
	if status != http.StatusOK || out.DeviceAuthID == "" || out.UserCode == "" {
		return Pending{}, "", fmt.Errorf("oauth: the ChatGPT device login could not be started (HTTP %d)", status)
	}
	interval, _ := strconv.Atoi(strings.Trim(string(out.Interval), `"`))
	secret, _ := json.Marshal(openAIDevice{DeviceAuthID: out.DeviceAuthID, UserCode: out.UserCode})
	return Pending{
		UserCode:        out.UserCode,
		VerificationURI: o.base + "/codex/device",
		Interval:        time.Duration(max(interval, 1)) * time.Second,
		ExpiresAt:       time.Now().Add(openAILoginTTL),
	}, string(secret), nil
}

func (o *openai) Wait(ctx context.Context, p Pending, secret string) (Token, error) {
	var dev openAIDevice
	if err := json.Unmarshal([]byte(secret), &dev); err != nil {
		return Token{}, fmt.Errorf("oauth: malformed ChatGPT device secret")
	}
	ctx, cancel := context.WithDeadline(ctx, p.ExpiresAt)
	defer cancel()
	for {
		var code struct {
			AuthorizationCode string `json:"authorization_code"`
			CodeVerifier      string `json:"code_verifier"`
			Error             any    `json:"error"`
		}
		status, err := o.post(ctx, "/api/accounts/deviceauth/token", dev, &code)
		switch {
		case err != nil && ctx.Err() != nil && !time.Now().Before(p.ExpiresAt):
			return Token{}, ErrExpired
		case err != nil:
			return Token{}, err
		case status == http.StatusOK && code.AuthorizationCode != "":
			tok, err := o.cfg.Exchange(withClient(ctx, o.hc), code.AuthorizationCode, oauth2.VerifierOption(code.CodeVerifier))
			if err != nil {
				return Token{}, exchangeError(err)
			}
			return openAIToken(tok, ""), nil
		case status == http.StatusForbidden || status == http.StatusNotFound:
			// Not finished yet.
		case errorCode(code.Error) == "access_denied":
			return Token{}, ErrDenied
		case errorCode(code.Error) == "expired_token" || status == http.StatusGone:
			return Token{}, ErrExpired
		case status >= 400 && status < 500:
			return Token{}, fmt.Errorf("%w: HTTP %d", ErrRefused, status)
		default:
			return Token{}, fmt.Errorf("oauth: the ChatGPT device login answered HTTP %d", status)
		}
		select {
		case <-ctx.Done():
			if !time.Now().Before(p.ExpiresAt) {
				return Token{}, ErrExpired
			}
			return Token{}, ctx.Err()
		case <-time.After(p.Interval):
		}
	}
}

func (o *openai) Refresh(ctx context.Context, refresh string) (Token, error) {
	tok, err := refreshWith(ctx, &o.cfg, o.hc, refresh)
	if err != nil {
		return Token{}, err
	}
	return openAIToken(tok, refresh), nil
}

// openAIToken reads a token answer. A refresh answer without a new refresh token keeps the
// old one.
func openAIToken(tok *oauth2.Token, oldRefresh string) Token {
	t := Token{Access: tok.AccessToken, Refresh: tok.RefreshToken, Expiry: tok.Expiry}
	if t.Refresh == "" {
		t.Refresh = oldRefresh
	}
	if id, _ := tok.Extra("id_token").(string); id != "" {
		t.AccountID = accountID(id)
	}
	if t.AccountID == "" {
		t.AccountID = accountID(tok.AccessToken)
	}
	return t
}

// accountID reads the ChatGPT account id from a JWT's claims, where OpenCode looks for it. The
// token came straight from the issuer over TLS, so its signature is not checked here.
func accountID(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		AccountID string `json:"chatgpt_account_id"`
		Auth      struct {
			AccountID string `json:"chatgpt_account_id"`
		} `json:"https://api.openai.com/auth"`
		Organizations []struct {
			ID string `json:"id"`
		} `json:"organizations"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	switch {
	case c.AccountID != "":
		return c.AccountID
	case c.Auth.AccountID != "":
		return c.Auth.AccountID
	case len(c.Organizations) > 0:
		return c.Organizations[0].ID
	}
	return ""
}

// post sends a JSON body and decodes a JSON answer, whatever its status.
func (o *openai) post(ctx context.Context, path string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := o.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("oauth: %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("oauth: %s: %w", path, err)
	}
	_ = json.Unmarshal(data, out) // error answers need not be JSON; the status decides
	return resp.StatusCode, nil
}

// errorCode reads an OAuth error that is either "code" or {"code": "..."}.
func errorCode(v any) string {
	switch e := v.(type) {
	case string:
		return e
	case map[string]any:
		if c, ok := e["code"].(string); ok {
			return c
		}
	}
	return ""
}

// exchangeError reports a refused code exchange by its code only: the code is spent, so
// polling again cannot help.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Errorf("%w: the code exchange answered HTTP %d %s", ErrRefused, re.Response.StatusCode, re.ErrorCode)
	}
	return fmt.Errorf("oauth: the ChatGPT code exchange failed: %w", err)
}
