package oauthtest

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
)

// openAIScopes are requested on behalf of the OpenAI-shaped client, whose
// usercode request carries only client_id.
const openAIScopes = "openid profile email offline_access"

// codeGrantLifespan bounds how long an OpenAI authorization_code may wait
// for redemption.
const codeGrantLifespan = 5 * time.Minute

// handleOpenAIUserCode starts an OpenAI-shaped device login:
// {"client_id"} -> 200 {"device_auth_id","user_code","interval"}.
//
// It runs a fosite device authorization internally, so Approve, Deny and
// expiry work exactly as in the GitHub-shaped flow; the device code never
// leaves the server, the client gets an opaque device_auth_id instead.
// interval is a string of whole seconds (e.g. "1"), as OpenAI sends it.
func (s *Server) handleOpenAIUserCode(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in struct {
		ClientID string `json:"client_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "body must be JSON {\"client_id\": ...}")
		return
	}
	req := s.internalForm(ctx, r.URL.Path, url.Values{"client_id": {in.ClientID}, "scope": {openAIScopes}})
	d, _, err := s.newDevice(ctx, req)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, nil, err)
		return
	}
	id := "deviceauth_" + randomString(16)
	s.mu.Lock()
	d.authID = id
	s.byAuthID[id] = d
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"device_auth_id": id,
		"user_code":      d.userCode,
		"interval":       strconv.Itoa(s.interval),
	})
}

// handleOpenAIDeviceToken is polled by the OpenAI-shaped client with
// {"device_auth_id","user_code"}. Statuses: 403 while the user has not
// decided (OpenAI answers 403 or 404 while waiting); 400 with a JSON error
// for access_denied, expired_token, an unknown device_auth_id or an already
// redeemed one; 200 {"authorization_code","code_challenge","code_verifier"}
// once approved.
//
// Each poll runs fosite's device_code token exchange internally (without the
// slow_down rule). On success the token response is parked under a fresh
// single-use authorization_code with a fresh code_verifier, to be redeemed at
// /oauth/token.
func (s *Server) handleOpenAIDeviceToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var in struct {
		DeviceAuthID string `json:"device_auth_id"`
		UserCode     string `json:"user_code"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "body must be JSON {\"device_auth_id\": ..., \"user_code\": ...}")
		return
	}
	s.mu.Lock()
	d := s.byAuthID[in.DeviceAuthID]
	s.mu.Unlock()
	if d == nil || normalizeUserCode(in.UserCode) != normalizeUserCode(d.userCode) {
		// Not 404: OpenAI-shaped clients treat 403/404 as "keep polling".
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown device_auth_id or user_code")
		return
	}

	form := url.Values{
		"grant_type":  {string(fosite.GrantTypeDeviceCode)},
		"device_code": {d.deviceCode},
		"client_id":   {d.clientID},
	}
	ictx := context.WithValue(ctx, noRateLimitKey{}, true)
	req := s.internalForm(ictx, "/oauth/token", form)
	ar, err := s.provider.NewAccessRequest(ictx, req, &fosite.DefaultSession{})
	if err == nil {
		var resp fosite.AccessResponder
		if resp, err = s.provider.NewAccessResponse(ictx, ar); err == nil {
			s.parkTokens(w, d.clientID, ar.GetSession(), resp.ToMap())
			return
		}
	}
	rfc := fosite.ErrorToRFC6749Error(err).WithExposeDebug(true)
	status := http.StatusBadRequest
	switch {
	case rfc.ErrorField == "authorization_pending":
		status = http.StatusForbidden
	case rfc.CodeField >= 500:
		status = rfc.CodeField
	}
	writeOAuthError(w, status, rfc.ErrorField, rfc.GetDescription())
}

func (s *Server) parkTokens(w http.ResponseWriter, clientID string, sess fosite.Session, tokens map[string]any) {
	g := &codeGrant{
		clientID:  clientID,
		verifier:  randomString(32),
		tokens:    maps.Clone(tokens),
		subject:   sess.GetSubject(),
		accountID: accountID(sess),
		expiresAt: time.Now().Add(codeGrantLifespan),
	}
	code := "ac_" + randomString(24)
	s.mu.Lock()
	s.codes[code] = g
	s.mu.Unlock()
	sum := sha256.Sum256([]byte(g.verifier))
	writeJSON(w, http.StatusOK, map[string]any{
		"authorization_code": code,
		"code_challenge":     base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_verifier":      g.verifier,
	})
}

// handleOpenAIToken is the OpenAI-shaped token endpoint (form body; a JSON
// body is accepted too, as the Codex CLI sends on refresh).
//
//   - grant_type=authorization_code with code, code_verifier, client_id and
//     redirect_uri = <issuer>/deviceauth/callback: redeems a code from
//     /api/accounts/deviceauth/token (once; any second use, wrong verifier,
//     client or redirect_uri is 400 invalid_grant) and returns its tokens
//     plus an id_token.
//   - grant_type=refresh_token: fosite's refresh grant with rotation, RFC 6749
//     status codes (400 invalid_grant, ...), plus an id_token.
func (s *Server) handleOpenAIToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := jsonBodyToForm(r); err != nil {
		s.provider.WriteAccessError(ctx, w, nil, err)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if r.PostForm.Get("grant_type") == "authorization_code" {
		s.redeemCode(w, r.PostForm)
		return
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	sess := ar.GetSession()
	resp.SetExtra("id_token", s.idToken(ar.GetClient().GetID(), sess.GetSubject(), accountID(sess)))
	s.provider.WriteAccessResponse(ctx, w, ar, resp)
}

func (s *Server) redeemCode(w http.ResponseWriter, f url.Values) {
	code := f.Get("code")
	s.mu.Lock()
	g := s.codes[code]
	delete(s.codes, code) // single use, whatever the outcome
	s.mu.Unlock()
	switch {
	case g == nil:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "unknown or already used authorization code")
	case time.Now().After(g.expiresAt):
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "authorization code expired")
	case f.Get("client_id") != g.clientID:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "client_id does not match the device authorization")
	case !strings.HasSuffix(f.Get("redirect_uri"), "/deviceauth/callback"):
		// Only the path is checked: a test may put a proxy, with an address of its own,
		// between the client and this server.
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri must be <issuer>/deviceauth/callback")
	case f.Get("code_verifier") != g.verifier:
		writeOAuthError(w, http.StatusBadRequest, "invalid_grant", "code_verifier mismatch")
	default:
		out := maps.Clone(g.tokens)
		out["id_token"] = s.idToken(g.clientID, g.subject, g.accountID)
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
	}
}

// handleRevoke is RFC 7009 token revocation (form: token, optional
// token_type_hint, client_id). Revoking a refresh token also revokes the
// access token issued with it.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := jsonBodyToForm(r); err != nil {
		s.provider.WriteRevocationResponse(ctx, w, err)
		return
	}
	s.provider.WriteRevocationResponse(ctx, w, s.provider.NewRevocationRequest(ctx, r))
}

// idToken builds an HS256 JWT keyed with a server-internal secret that is not
// published: clients of the real service only decode the claims (for the
// ChatGPT account ID), so tests must not verify the signature either.
func (s *Server) idToken(clientID, subject, accountID string) string {
	now := time.Now()
	header := map[string]any{"alg": "HS256", "typ": "JWT"}
	claims := map[string]any{
		"iss":   s.url,
		"aud":   []string{clientID},
		"sub":   subject,
		"email": subject + "@example.test",
		"iat":   now.Unix(),
		"exp":   now.Add(s.atLifespan).Unix(),
		"https://api.openai.com/auth": map[string]any{
			"chatgpt_account_id": accountID,
		},
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func accountID(sess fosite.Session) string {
	if ds, ok := sess.(*fosite.DefaultSession); ok {
		if v, ok := ds.Extra[accountIDKey].(string); ok {
			return v
		}
	}
	return ""
}

// internalForm builds the form POST that fosite expects, for flows where the
// wire format differs (JSON bodies, server-side device codes).
func (s *Server) internalForm(ctx context.Context, path string, form url.Values) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		panic(err) // URL and method are ours
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func writeOAuthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]any{"error": code, "error_description": description})
}
