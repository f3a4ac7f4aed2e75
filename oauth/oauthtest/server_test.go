package oauthtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	ghClient     = "gh-client"
	openAIClient = "app_test"
	ghTokenPath  = "/login/oauth/access_token"
)

var httpClient = &http.Client{Timeout: 10 * time.Second}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// githubConfig is the client side of the GitHub-shaped flow. AuthStyleInParams
// matters: see TestXOAuth2AuthStyleProbeDoublesPolls.
func githubConfig(s *Server) *oauth2.Config {
	return &oauth2.Config{
		ClientID: ghClient,
		Scopes:   []string{"read:user"},
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: s.URL() + "/login/device/code",
			TokenURL:      s.URL() + ghTokenPath,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

func post(t *testing.T, u, contentType string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := httpClient.Post(u, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: read body: %v", u, err)
	}
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("POST %s: status %d, body not JSON: %q", u, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	return post(t, u, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

func postJSON(t *testing.T, u string, v any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return post(t, u, "application/json", b)
}

func retrieveError(t *testing.T, err error, wantCode string, wantStatus int) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v (%T), want *oauth2.RetrieveError %q", err, err, wantCode)
	}
	if re.ErrorCode != wantCode {
		t.Fatalf("ErrorCode = %q (%v), want %q", re.ErrorCode, err, wantCode)
	}
	if re.Response.StatusCode != wantStatus {
		t.Fatalf("HTTP status = %d, want %d", re.Response.StatusCode, wantStatus)
	}
}

// deviceToken runs the GitHub-shaped device flow with an immediate approval.
func deviceToken(t *testing.T, ctx context.Context, s *Server, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if err := s.Approve(da.UserCode); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	return tok
}

func TestGitHubDeviceFlowApprove(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{ghClient}, AccessTokenLifespan: 3 * time.Second})
	cfg := githubConfig(s)

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	if da.DeviceCode == "" || da.UserCode == "" {
		t.Fatalf("empty codes: %+v", da)
	}
	if da.VerificationURI != s.URL()+"/login/device" {
		t.Errorf("verification_uri = %q", da.VerificationURI)
	}
	if !strings.HasPrefix(da.VerificationURIComplete, s.URL()+"/login/device?user_code=") {
		t.Errorf("verification_uri_complete = %q", da.VerificationURIComplete)
	}
	if da.Interval != 1 {
		t.Errorf("interval = %d, want 1", da.Interval)
	}
	if left := time.Until(da.Expiry); left < 9*time.Minute || left > 11*time.Minute {
		t.Errorf("device code expires in %v, want ~10m", left)
	}
	if got := s.Pending(); !slices.Equal(got, []string{da.UserCode}) {
		t.Errorf("Pending() = %v, want [%s]", got, da.UserCode)
	}

	// The GitHub quirk: pending is HTTP 200 with an "error" member, and
	// x/oauth2 still reports it as a *RetrieveError (internal/token.go
	// checks `failureStatus || retrieveError.ErrorCode != ""`).
	_, err = cfg.Exchange(ctx, "",
		oauth2.SetAuthURLParam("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
		oauth2.SetAuthURLParam("device_code", da.DeviceCode))
	retrieveError(t, err, "authorization_pending", http.StatusOK)

	go func() {
		time.Sleep(1500 * time.Millisecond)
		if err := s.Approve(da.UserCode); err != nil {
			t.Errorf("Approve: %v", err)
		}
	}()
	start := time.Now()
	tok, err := cfg.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("DeviceAccessToken: %v", err)
	}
	t.Logf("DeviceAccessToken took %v, %d token requests", time.Since(start), s.Requests(ghTokenPath))
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token lacks access or refresh token: %+v", tok)
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		t.Errorf("token_type = %q", tok.TokenType)
	}
	if left := time.Until(tok.Expiry); left <= 0 || left > 4*time.Second {
		t.Errorf("token expires in %v, want (0, 4s]", left)
	}
	if sc := tok.Extra("scope"); sc != "read:user" {
		t.Errorf("scope = %v, want read:user", sc)
	}
	// 1 Exchange + >=1 pending poll by DeviceAccessToken + the successful one.
	if n := s.Requests(ghTokenPath); n < 3 {
		t.Errorf("token endpoint hit %d times, want >= 3", n)
	}
	if p := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() after approval = %v", p)
	}
	if err := s.Approve(da.UserCode); err == nil {
		t.Errorf("second Approve succeeded")
	}
}

func TestGitHubDeviceFlowDenyViaPage(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{ghClient}})
	cfg := githubConfig(s)

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}

	resp, err := httpClient.Get(da.VerificationURIComplete)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `value="`+da.UserCode+`"`) {
		t.Fatalf("GET verification page: %d %s", resp.StatusCode, page)
	}

	// Lower case and a dash, as a person might type it.
	typed := strings.ToLower(da.UserCode[:4] + "-" + da.UserCode[4:])
	resp, err = httpClient.PostForm(s.URL()+"/login/device", url.Values{"user_code": {typed}, "action": {"deny"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Device denied.") {
		t.Fatalf("POST deny: %d %s", resp.StatusCode, page)
	}

	_, err = cfg.DeviceAccessToken(ctx, da)
	retrieveError(t, err, "access_denied", http.StatusOK)
}

func TestDeviceCodeExpiry(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{ghClient, openAIClient}, DeviceCodeLifespan: 2 * time.Second})
	cfg := githubConfig(s)

	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	code, oa := postJSON(t, s.URL()+"/api/accounts/deviceauth/usercode", map[string]string{"client_id": openAIClient})
	if code != http.StatusOK {
		t.Fatalf("usercode: %d %v", code, oa)
	}

	// x/oauth2 bounds DeviceAccessToken by da.Expiry and would return
	// context.DeadlineExceeded on its own; clear it to see the server's answer.
	da.Expiry = time.Time{}
	_, err = cfg.DeviceAccessToken(ctx, da)
	retrieveError(t, err, "expired_token", http.StatusOK)

	if err := s.Approve(da.UserCode); err == nil {
		t.Errorf("Approve of an expired code succeeded")
	}
	if p := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() = %v, want none", p)
	}
	code, body := postJSON(t, s.URL()+"/api/accounts/deviceauth/token",
		map[string]any{"device_auth_id": oa["device_auth_id"], "user_code": oa["user_code"]})
	if code != http.StatusBadRequest || body["error"] != "expired_token" {
		t.Fatalf("OpenAI poll after expiry: %d %v", code, body)
	}
}

func TestGitHubSlowDownAndJSONBody(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{ClientIDs: []string{ghClient}})

	// GitHub also accepts JSON bodies.
	code, da := postJSON(t, s.URL()+"/login/device/code", map[string]string{"client_id": ghClient, "scope": "read:user"})
	if code != http.StatusOK || da["device_code"] == nil || da["interval"] != float64(1) {
		t.Fatalf("JSON device code request: %d %v", code, da)
	}
	poll := url.Values{
		"client_id":   {ghClient},
		"grant_type":  {"urn:ietf:params:oauth:grant-type:device_code"},
		"device_code": {da["device_code"].(string)},
	}
	code, body := postForm(t, s.URL()+ghTokenPath, poll)
	if code != http.StatusOK || body["error"] != "authorization_pending" {
		t.Fatalf("first poll: %d %v", code, body)
	}
	code, body = postForm(t, s.URL()+ghTokenPath, poll)
	if code != http.StatusOK || body["error"] != "slow_down" || body["interval"] != float64(6) {
		t.Fatalf("immediate second poll: %d %v, want 200 slow_down interval 6", code, body)
	}

	// Unknown clients are refused at the device endpoint with a real error status.
	bad := githubConfig(s)
	bad.ClientID = "nope"
	_, err := bad.DeviceAuth(testContext(t))
	retrieveError(t, err, "invalid_client", http.StatusUnauthorized)
}

// TestXOAuth2AuthStyleProbeDoublesPolls documents a client pitfall: with the
// zero Endpoint.AuthStyle (AuthStyleAutoDetect) x/oauth2 retries every failed
// token request at once with the other auth style until one succeeds. In the
// device flow each pending poll then becomes two back-to-back requests; the
// second earns slow_down, and DeviceAccessToken adds 5s to its interval.
func TestXOAuth2AuthStyleProbeDoublesPolls(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{ClientIDs: []string{ghClient}})
	cfg := githubConfig(s)
	cfg.Endpoint.AuthStyle = oauth2.AuthStyleAutoDetect

	ctx, cancel := context.WithTimeout(testContext(t), 2500*time.Millisecond)
	defer cancel()
	da, err := cfg.DeviceAuth(ctx)
	if err != nil {
		t.Fatalf("DeviceAuth: %v", err)
	}
	_, err = cfg.DeviceAccessToken(ctx, da)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DeviceAccessToken = %v, want deadline exceeded", err)
	}
	// One tick at 1s produced two requests; the next tick moved to 6s.
	if n := s.Requests(ghTokenPath); n != 2 {
		t.Fatalf("token endpoint hit %d times in 2.5s, want 2", n)
	}
}

func TestGitHubRefreshRotationAndRevocation(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{ghClient}, AccessTokenLifespan: 2 * time.Second})
	cfg := githubConfig(s)

	tok := deviceToken(t, ctx, s, cfg)
	// Let the access token really expire (x/oauth2 would refresh earlier
	// anyway: it treats tokens as expired 10s ahead of Expiry).
	time.Sleep(time.Until(tok.Expiry) + 100*time.Millisecond)

	before := s.Requests(ghTokenPath)
	tok2, err := cfg.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if n := s.Requests(ghTokenPath) - before; n != 1 {
		t.Errorf("refresh made %d token requests, want 1", n)
	}
	if tok2.AccessToken == tok.AccessToken {
		t.Errorf("refresh returned the same access token")
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh token not rotated: old %q new %q", tok.RefreshToken, tok2.RefreshToken)
	}
	if time.Until(tok2.Expiry) <= 0 {
		t.Errorf("refreshed token already expired: %v", tok2.Expiry)
	}

	// The rotated-out refresh token is dead (and, by fosite's reuse
	// detection, takes the newer one of the chain with it).
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	retrieveError(t, err, "invalid_grant", http.StatusOK)
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	retrieveError(t, err, "invalid_grant", http.StatusOK)

	// A user revoking the grant.
	other := deviceToken(t, ctx, s, cfg)
	if err := s.RevokeRefreshToken(other.RefreshToken); err != nil {
		t.Fatalf("RevokeRefreshToken: %v", err)
	}
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: other.RefreshToken}).Token()
	retrieveError(t, err, "invalid_grant", http.StatusOK)

	if err := s.RevokeRefreshToken("ory_rt_bogus.bogus"); err == nil {
		t.Errorf("RevokeRefreshToken of an unknown token succeeded")
	}
}

func decodeClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("id_token %q is not a JWS compact serialization", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("id_token payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("id_token claims: %v", err)
	}
	return claims
}

func accountIDClaim(claims map[string]any) any {
	auth, _ := claims["https://api.openai.com/auth"].(map[string]any)
	return auth["chatgpt_account_id"]
}

func TestOpenAIDeviceLogin(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{openAIClient}, AccessTokenLifespan: 3 * time.Second})
	usercodeURL := s.URL() + "/api/accounts/deviceauth/usercode"
	pollURL := s.URL() + "/api/accounts/deviceauth/token"
	tokenURL := s.URL() + "/oauth/token"
	redirect := s.URL() + "/deviceauth/callback"

	code, dev := postJSON(t, usercodeURL, map[string]string{"client_id": openAIClient})
	if code != http.StatusOK {
		t.Fatalf("usercode: %d %v", code, dev)
	}
	if dev["interval"] != "1" || dev["device_auth_id"] == "" || dev["user_code"] == "" {
		t.Fatalf("usercode response = %v", dev)
	}
	pollBody := map[string]any{"device_auth_id": dev["device_auth_id"], "user_code": dev["user_code"]}

	if code, body := postJSON(t, pollURL, pollBody); code != http.StatusForbidden {
		t.Fatalf("poll while pending: %d %v, want 403", code, body)
	}
	// Polling fast is not slow_down'ed on this path.
	if code, body := postJSON(t, pollURL, pollBody); code != http.StatusForbidden {
		t.Fatalf("second poll while pending: %d %v, want 403", code, body)
	}
	if got := s.Pending(); !slices.Equal(got, []string{dev["user_code"].(string)}) {
		t.Fatalf("Pending() = %v", got)
	}

	// The user approves on the page OpenCode points at.
	resp, err := httpClient.PostForm(s.URL()+"/login/device", url.Values{"user_code": {dev["user_code"].(string)}, "action": {"approve"}})
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Device approved.") {
		t.Fatalf("approve via page: %d %s", resp.StatusCode, page)
	}

	code, grant := postJSON(t, pollURL, pollBody)
	if code != http.StatusOK || grant["authorization_code"] == "" || grant["code_verifier"] == "" {
		t.Fatalf("poll after approval: %d %v", code, grant)
	}
	if code, body := postJSON(t, pollURL, pollBody); code != http.StatusBadRequest {
		t.Fatalf("poll after redemption of the device code: %d %v, want 400", code, body)
	}

	exchange := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {grant["authorization_code"].(string)},
		"code_verifier": {grant["code_verifier"].(string)},
		"redirect_uri":  {redirect},
		"client_id":     {openAIClient},
	}
	code, toks := postForm(t, tokenURL, exchange)
	if code != http.StatusOK {
		t.Fatalf("authorization_code exchange: %d %v", code, toks)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if s, _ := toks[k].(string); s == "" {
			t.Fatalf("exchange response lacks %s: %v", k, toks)
		}
	}
	if tt, _ := toks["token_type"].(string); !strings.EqualFold(tt, "bearer") {
		t.Errorf("token_type = %v", toks["token_type"])
	}
	if exp, _ := toks["expires_in"].(float64); exp < 1 || exp > 3 {
		t.Errorf("expires_in = %v, want 1..3", toks["expires_in"])
	}
	claims := decodeClaims(t, toks["id_token"].(string))
	if got := accountIDClaim(claims); got != "acct-test-1" {
		t.Errorf("chatgpt_account_id = %v, want acct-test-1", got)
	}
	if claims["iss"] != s.URL() {
		t.Errorf("iss = %v, want %s", claims["iss"], s.URL())
	}

	if code, body := postForm(t, tokenURL, exchange); code != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("second use of the authorization code: %d %v, want 400 invalid_grant", code, body)
	}

	// Refresh with x/oauth2 against /oauth/token: rotation and an id_token.
	cfg := &oauth2.Config{ClientID: openAIClient, Endpoint: oauth2.Endpoint{TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	rt1 := toks["refresh_token"].(string)
	tok2, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt1, Expiry: time.Now().Add(-time.Second)}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.AccessToken == toks["access_token"] || tok2.RefreshToken == "" || tok2.RefreshToken == rt1 {
		t.Fatalf("refresh did not rotate: %+v", tok2)
	}
	idt, _ := tok2.Extra("id_token").(string)
	if got := accountIDClaim(decodeClaims(t, idt)); got != "acct-test-1" {
		t.Errorf("refreshed id_token chatgpt_account_id = %v", got)
	}

	// RFC 7009 revocation of the current refresh token, then both the revoked
	// and the rotated-out token are refused with a plain 400.
	resp, err = httpClient.PostForm(s.URL()+"/oauth/revoke", url.Values{
		"token": {tok2.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {openAIClient},
	})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	for _, rt := range []string{tok2.RefreshToken, rt1} {
		code, body := postForm(t, tokenURL, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {openAIClient}})
		if code != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("refresh with revoked token: %d %v, want 400 invalid_grant", code, body)
		}
	}

	// Deny on this path.
	_, dev2 := postJSON(t, usercodeURL, map[string]string{"client_id": openAIClient})
	if err := s.Deny(dev2["user_code"].(string)); err != nil {
		t.Fatalf("Deny: %v", err)
	}
	code, body := postJSON(t, pollURL, map[string]any{"device_auth_id": dev2["device_auth_id"], "user_code": dev2["user_code"]})
	if code != http.StatusBadRequest || body["error"] != "access_denied" {
		t.Fatalf("poll after deny: %d %v, want 400 access_denied", code, body)
	}
}

// TestConcurrentLogins runs several device flows against one server at once,
// for the race detector.
func TestConcurrentLogins(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := Start(t, Options{ClientIDs: []string{ghClient}})
	cfg := githubConfig(s)
	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() {
			da, err := cfg.DeviceAuth(ctx)
			if err != nil {
				errs <- err
				return
			}
			go func() { _ = s.Pending() }()
			if err := s.Approve(da.UserCode); err != nil {
				errs <- err
				return
			}
			tok, err := cfg.DeviceAccessToken(ctx, da)
			if err == nil {
				_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if p := s.Pending(); len(p) != 0 {
		t.Errorf("Pending() = %v", p)
	}
}

func TestNewRequiresClientIDs(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without ClientIDs succeeded")
	}
}
