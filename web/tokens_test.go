package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// do sends method path with an optional JSON body and bearer token through c.
func do(t *testing.T, c *http.Client, method, u, bearer string, body any) (*http.Response, string) {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, read(t, resp)
}

func TestAPITokens(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	api := e.srv.URL + "/api/v1"

	// Made through the API with the session: the secret is in this response only.
	resp, body := do(t, alice, "POST", api+"/account/tokens", "", map[string]any{"name": "ci", "scope": "write", "expiresInDays": 7})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %s (Cache-Control %q)", resp.StatusCode, body, resp.Header.Get("Cache-Control"))
	}
	var created struct {
		Token    string
		APIToken struct{ ID, Scope, Prefix string }
	}
	json.Unmarshal([]byte(body), &created)
	rw := created.Token
	if !strings.HasPrefix(rw, "doce_pat_") || created.APIToken.Scope != "write" {
		t.Fatalf("created %s", body)
	}

	// Made on the account page: shown once, then only its prefix.
	resp, err := alice.PostForm(e.srv.URL+"/account/tokens", url.Values{"name": {"reader"}, "scope": {"read"}, "expiresInDays": {"30"}})
	if err != nil {
		t.Fatal(err)
	}
	page := read(t, resp)
	i := strings.Index(page, `value="doce_pat_`)
	if resp.StatusCode != http.StatusCreated || i < 0 || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("form create: %d, token shown %v", resp.StatusCode, i >= 0)
	}
	ro := page[i+len(`value="`):]
	ro = ro[:strings.IndexByte(ro, '"')]
	resp, _ = alice.Get(e.srv.URL + "/account")
	if page := read(t, resp); strings.Contains(page, ro) || strings.Contains(page, rw) || !strings.Contains(page, "reader") || !strings.Contains(page, created.APIToken.Prefix+"…") {
		t.Errorf("the account page shows a token again, or does not list them")
	}
	for _, bad := range []url.Values{
		{"name": {""}, "scope": {"read"}},
		{"name": {"x"}, "scope": {"admin"}},
		{"name": {"x"}, "scope": {"read"}, "expiresInDays": {"366"}},
		{"name": {strings.Repeat("n", 65)}, "scope": {"read"}},
	} {
		resp, _ := alice.PostForm(e.srv.URL+"/account/tokens", bad)
		if page := read(t, resp); resp.StatusCode != http.StatusBadRequest || strings.Contains(page, `value="doce_pat_`) {
			t.Errorf("form %v: %d, want 400 and no token", bad, resp.StatusCode)
		}
	}

	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, method, path, auth string
		c                        *http.Client
		body                     any
		want                     int
		code                     string
	}{
		{"read with read-write", "GET", "/projects", "Bearer " + rw, anon, nil, 200, ""},
		{"read with read-only", "GET", "/projects", "Bearer " + ro, anon, nil, 200, ""},
		{"scheme is case-insensitive", "GET", "/projects", "bearer " + ro, anon, nil, 200, ""},
		// A write reaches the handler (which refuses the wrong password) with a read-write token…
		{"write with read-write", "POST", "/projects", "Bearer " + rw, anon, map[string]string{"prompt": ""}, 400, "invalid"},
		// …and stops at the door with a read-only one.
		{"write with read-only", "POST", "/account/password", "Bearer " + ro, anon, map[string]string{"currentPassword": "nope", "newPassword": "long enough password"}, 403, "token_read_only"},
		{"delete with read-only", "DELETE", "/account/tokens/" + created.APIToken.ID, "Bearer " + ro, anon, nil, 403, "token_read_only"},
		{"a token cannot mint tokens", "POST", "/account/tokens", "Bearer " + rw, anon, map[string]any{"name": "more", "scope": "write"}, 403, "token_cannot_create_tokens"},
		{"unknown token", "GET", "/projects", "Bearer doce_pat_nope", anon, nil, 401, "invalid_token"},
		{"not a bearer", "GET", "/projects", "Basic YWxpY2U6eA==", anon, nil, 401, "invalid_authorization"},
		{"empty bearer", "GET", "/projects", "Bearer ", anon, nil, 401, "invalid_authorization"},
		// A request with a header is judged by it alone: bob's cookie does not rescue a bad token.
		{"bad token with a good cookie", "GET", "/projects", "Bearer doce_pat_nope", bob, nil, 401, "invalid_token"},
		{"bob cannot revoke alice's token", "DELETE", "/account/tokens/" + created.APIToken.ID, "", bob, nil, 404, "not_found"},
	} {
		resp, body := do(t, tc.c, tc.method, api+tc.path, tc.auth, tc.body)
		var eb struct{ Error struct{ Code string } }
		json.Unmarshal([]byte(body), &eb)
		if resp.StatusCode != tc.want || eb.Error.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.want, tc.code)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
	}

	// With bob's cookie and alice's token, the request is alice's.
	resp, body = do(t, bob, "GET", api+"/account/tokens", "Bearer "+ro, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"name":"reader"`) {
		t.Errorf("token over cookie: %d %s", resp.StatusCode, body)
	}
	// Pages never take a token.
	resp, _ = do(t, anon, "GET", e.srv.URL+"/projects", "Bearer "+rw, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("a page with a bearer token: %d → %s, want 303 → /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Cross-origin protection stands in front of bearer requests too.
	req, _ := http.NewRequest(http.MethodPost, api+"/account/password", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+rw)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	if resp, _ := anon.Do(req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST with a token: %d, want 403", resp.StatusCode)
	}

	// Uses are audited once per token per hour, however many requests.
	_, body = do(t, alice, "GET", api+"/audit", "", nil)
	if n := strings.Count(body, `"action":"api_token.use"`); n != 2 || !strings.Contains(body, `"action":"api_token.create"`) {
		t.Errorf("audit has %d token uses (want 2: one per token): %s", n, body)
	}
	_, body = do(t, alice, "GET", api+"/account/tokens", "", nil)
	var list struct{ Tokens []struct{ ID, Name string } }
	json.Unmarshal([]byte(body), &list)
	if !strings.Contains(body, `"lastUsedAt"`) || len(list.Tokens) != 2 || strings.Contains(body, rw) || strings.Contains(body, ro) {
		t.Errorf("token list (want two, with last use, without secrets): %s", body)
	}

	// Revoked through the API and on the page: refused at once.
	if resp, body := do(t, alice, "DELETE", api+"/account/tokens/"+created.APIToken.ID, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	for _, tok := range list.Tokens {
		if tok.Name == "reader" {
			resp, _ := alice.PostForm(e.srv.URL+"/account/tokens/"+tok.ID+"/revoke", nil)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account?revoked=1" {
				t.Errorf("revoke form: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	}
	for _, tok := range []string{rw, ro} {
		if resp, _ := do(t, anon, "GET", api+"/projects", "Bearer "+tok, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("revoked token: %d, want 401", resp.StatusCode)
		}
	}
}
