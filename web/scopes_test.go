package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestTokenScopesGuardAccounts: an administrator's read-write token cannot create (or make
// admin), disable or unlock accounts, nor change the password; only a token of scope admin,
// which only an administrator can make, manages accounts. Each refusal leaves the users as
// they were.
func TestTokenScopesGuardAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := client()
	if resp, _ := admin.PostForm(e.srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	alice := e.user(t, "alice")
	api := e.srv.URL + "/api/v1"
	token := func(c *http.Client, scope string) (int, string) {
		resp, body := do(t, c, "POST", api+"/account/tokens", "", map[string]any{"name": scope, "scope": scope})
		var v struct{ Token string }
		json.Unmarshal([]byte(body), &v)
		return resp.StatusCode, v.Token
	}
	if code, tok := token(alice, "admin"); code != http.StatusBadRequest || tok != "" {
		t.Fatalf("a user's admin-scope token: %d %q, want 400", code, tok)
	}
	if ts, _ := e.store.APITokens(ctx, mustUser(t, e, "alice")); len(ts) != 0 {
		t.Fatalf("alice has %d tokens after the refusal", len(ts))
	}
	_, rw := token(admin, "write")
	aliceID := mustUser(t, e, "alice")
	refused := []struct {
		method, path string
		body         any
	}{
		{"POST", "/admin/users", map[string]any{"username": "mallory", "password": "long enough password", "admin": true}},
		{"POST", "/admin/users/" + aliceID + "/disable", nil},
		{"POST", "/admin/lockouts/clear", map[string]any{"kind": "account", "subject": "alice"}},
	}
	for _, r := range refused {
		resp, body := do(t, http.DefaultClient, r.method, api+r.path, "Bearer "+rw, r.body)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "token_not_admin") {
			t.Errorf("%s %s with a read-write token: %d %s, want 403 token_not_admin", r.method, r.path, resp.StatusCode, body)
		}
	}
	resp, body := do(t, http.DefaultClient, "POST", api+"/account/password", "Bearer "+rw, map[string]any{"currentPassword": "long enough password", "newPassword": "a new long password"})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "token_cannot_change_password") {
		t.Errorf("password change with a token: %d %s", resp.StatusCode, body)
	}
	us, _ := e.store.Users(ctx)
	if len(us) != 2 {
		t.Fatalf("%d users after the refusals, want 2", len(us))
	}
	for _, u := range us {
		if u.DisabledAt != nil {
			t.Errorf("%s was disabled", u.Username)
		}
	}
	if resp, _ := client().PostForm(e.srv.URL+"/login", url.Values{"username": {"admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the admin's password changed: sign-in %d", resp.StatusCode)
	}
	// Reading stays open to a read-write token; the admin scope manages accounts.
	if resp, _ := do(t, http.DefaultClient, "GET", api+"/admin/users", "Bearer "+rw, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("listing users with a read-write token: %d", resp.StatusCode)
	}
	code, adm := token(admin, "admin")
	if code != http.StatusCreated {
		t.Fatalf("an administrator's admin-scope token: %d", code)
	}
	if resp, body := do(t, http.DefaultClient, "POST", api+"/admin/users", "Bearer "+adm, map[string]any{"username": "carol", "password": "long enough password"}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a user with an admin token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, http.DefaultClient, "POST", api+"/account/tokens", "Bearer "+adm, map[string]any{"name": "x", "scope": "read"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an admin token made a token: %d", resp.StatusCode)
	}
}

func mustUser(t *testing.T, e *env, name string) string {
	t.Helper()
	u, err := e.store.UserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
