package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/doce-dev/doce/store"
)

// TestForgeConnectRefusals: every way a forge connection can be refused before anything is
// stored is a 400 naming the field to fix, with words a person can act on, and neither the
// answer nor the database holds the token. (Connecting for real needs Vault: see the e2e test
// against a real Gitea.)
func TestForgeConnectRefusals(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	api := e.srv.URL + "/api/v1"
	const token = "tok-never-shown-0123456789"
	// A Gitea that refuses every token.
	gitea := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/user" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"user does not exist [uid: 0, name: ]"}`))
	}))
	defer gitea.Close()
	notForge := httptest.NewServer(http.NotFoundHandler())
	defer notForge.Close()

	for _, tc := range []struct {
		name  string
		body  map[string]any
		field string
		says  string
	}{
		{"unknown kind", map[string]any{"kind": "svn", "token": token}, "kind", "Pick a forge"},
		{"gitea without an address", map[string]any{"kind": "gitea", "token": token}, "baseURL", "Enter your Gitea's address"},
		{"not an http address", map[string]any{"kind": "gitea", "baseURL": "git@example.com:x", "token": token}, "baseURL", "not an http(s) address"},
		{"no token", map[string]any{"kind": "gitea", "baseURL": gitea.URL}, "token", "personal access token"},
		{"token with a space", map[string]any{"kind": "gitea", "baseURL": gitea.URL, "token": "two " + token}, "token", "no spaces"},
		{"token refused", map[string]any{"kind": "gitea", "baseURL": gitea.URL, "token": token}, "token", "refused this token"},
		{"not a forge", map[string]any{"kind": "gitlab", "baseURL": notForge.URL, "token": token}, "baseURL", "No GitLab API answered"},
		{"metadata address", map[string]any{"kind": "gitea", "baseURL": "http://169.254.169.254", "token": token}, "baseURL", "DOCE_ALLOWED_PRIVATE_HOSTS"},
	} {
		resp, body := do(t, alice, "POST", api+"/forges", "", tc.body)
		var out struct {
			Error struct{ Code, Message, Field string }
		}
		_ = json.Unmarshal([]byte(body), &out)
		if resp.StatusCode != http.StatusBadRequest || out.Error.Field != tc.field || !strings.Contains(out.Error.Message, tc.says) {
			t.Errorf("%s: %d %s; want 400 on %s saying %q", tc.name, resp.StatusCode, body, tc.field, tc.says)
		}
		if strings.Contains(body, token) {
			t.Errorf("%s: the answer holds the token: %s", tc.name, body)
		}
	}

	// The page says the same, keeps what was typed but the token.
	resp, err := alice.PostForm(e.srv.URL+"/settings/forges", url.Values{"kind": {"gitea"}, "baseURL": {gitea.URL}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	page := read(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "refused this token") || !strings.Contains(page, `value="`+gitea.URL+`"`) || strings.Contains(page, token) {
		t.Errorf("form with a refused token: %d\n%s", resp.StatusCode, page)
	}

	resp, body := do(t, alice, "GET", api+"/forges", "", nil)
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"forges":[]}` {
		t.Errorf("forges after the refusals: %d %s", resp.StatusCode, body)
	}
	n, err := e.store.DB.NewSelect().Model((*store.ForgeConnection)(nil)).Count(context.Background())
	if err != nil || n != 0 {
		t.Errorf("%d forge connections stored (%v)", n, err)
	}
	resp, err = alice.Get(e.srv.URL + "/settings/forges")
	if err != nil {
		t.Fatal(err)
	}
	if page := read(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(page, "No forge connected yet") {
		t.Errorf("forges page: %d\n%s", resp.StatusCode, page)
	}
}

// TestForgeDisconnectOnlyYours: a user cannot see or disconnect another user's forge; an
// unknown id is 404 too.
func TestForgeDisconnectOnlyYours(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	ctx := context.Background()
	aliceID := mustUser(t, e, "alice")
	f := &store.ForgeConnection{ID: store.NewID(), UserID: aliceID, Kind: "gitea", BaseURL: "https://git.example.com",
		AccountLogin: "alice", TokenCiphertext: "vault:v1:sealed", DisplayHint: "…6789"}
	if err := e.store.CreateForgeConnection(ctx, f); err != nil {
		t.Fatal(err)
	}
	api := e.srv.URL + "/api/v1"
	if resp, body := do(t, bob, "GET", api+"/forges", "", nil); resp.StatusCode != http.StatusOK || strings.Contains(body, f.ID) {
		t.Errorf("bob lists: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, bob, "DELETE", api+"/forges/"+f.ID, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob disconnects alice's forge: %d %s", resp.StatusCode, body)
	}
	resp, body := do(t, alice, "GET", api+"/forges", "", nil)
	var out struct{ Forges []map[string]any }
	_ = json.Unmarshal([]byte(body), &out)
	if resp.StatusCode != http.StatusOK || len(out.Forges) != 1 || out.Forges[0]["account"] != "alice" || out.Forges[0]["displayHint"] != "…6789" ||
		out.Forges[0]["forgeName"] != "Gitea" || strings.Contains(body, "vault:") {
		t.Fatalf("alice lists: %d %s", resp.StatusCode, body)
	}
	// A second connection to the same forge is refused before the forge is asked.
	resp, body = do(t, alice, "POST", api+"/forges", "", map[string]any{"kind": "gitea", "baseURL": "https://git.example.com/", "token": "another-token"})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "already connected") {
		t.Errorf("second connection: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, alice, "DELETE", api+"/forges/"+f.ID, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("alice disconnects: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, alice, "DELETE", api+"/forges/"+f.ID, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second disconnect: %d, want 404", resp.StatusCode)
	}
	evs, _ := e.store.AuditEventsByActor(ctx, aliceID, 5)
	if len(evs) == 0 || evs[0].Action != "forge.disconnect" || evs[0].TargetID != f.ID {
		t.Errorf("audit: %+v", evs)
	}
}

// TestForgeNeedsToken: a connection whose token a forge refused says so in the list and on the
// page, which offers to replace it; a replace names a connected forge of the same kind.
func TestForgeNeedsToken(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	ctx := context.Background()
	f := &store.ForgeConnection{ID: store.NewID(), UserID: mustUser(t, e, "alice"), Kind: "gitea", BaseURL: "https://git.example.com",
		AccountLogin: "alice", TokenCiphertext: "vault:v1:sealed", DisplayHint: "…6789"}
	if err := e.store.CreateForgeConnection(ctx, f); err != nil {
		t.Fatal(err)
	}
	api := e.srv.URL + "/api/v1"
	status := func() map[string]any {
		t.Helper()
		resp, body := do(t, alice, "GET", api+"/forges", "", nil)
		var out struct{ Forges []map[string]any }
		if json.Unmarshal([]byte(body), &out); resp.StatusCode != http.StatusOK || len(out.Forges) != 1 {
			t.Fatalf("list: %d %s", resp.StatusCode, body)
		}
		return out.Forges[0]
	}
	if v := status(); v["status"] != "connected" || v["tokenRefusedAt"] != nil {
		t.Errorf("before a refusal: %v", v)
	}
	read, _ := e.store.ForgeConnection(ctx, f.UserID, f.ID)
	if err := e.store.MarkForgeTokenRefused(ctx, read); err != nil {
		t.Fatal(err)
	}
	if v := status(); v["status"] != "needs-token" || v["tokenRefusedAt"] == nil {
		t.Errorf("after a refusal: %v", v)
	}
	resp, page := do(t, alice, "GET", e.srv.URL+"/settings/forges", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-forge-status="needs-token"`) || !strings.Contains(page, "Needs a new token") ||
		!strings.Contains(page, `<details class="replace-token" open>`) || !strings.Contains(page, `name="replace" value="true"`) {
		t.Errorf("forges page: %d\n%s", resp.StatusCode, page)
	}
	resp, body := do(t, alice, "POST", api+"/forges", "", map[string]any{"kind": "github", "baseURL": "https://git.example.com", "token": "another-token", "replace": true})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"kind"`) {
		t.Errorf("replace as another kind: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, alice, "POST", api+"/forges", "", map[string]any{"kind": "gitea", "baseURL": "https://other.example.com", "token": "another-token", "replace": true})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not connected") {
		t.Errorf("replace of a forge not connected: %d %s", resp.StatusCode, body)
	}
}

// TestCreateProjectRepositoryInput: a repository a project is to be made from is checked before
// anything is stored; the API's nested fields and the form's flat ones are named alike.
func TestCreateProjectRepositoryInput(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	for _, tc := range []struct {
		repo        map[string]any
		field, says string
	}{
		{map[string]any{"url": "git@git.example.com:team/app.git"}, "repositoryUrl", "not an http(s) URL"},
		{map[string]any{"url": "https://ada:secret@git.example.com/team/app.git"}, "repositoryUrl", "Leave credentials out"},
		{map[string]any{"url": "https://git.example.com/team/app.git", "ref": "a..b"}, "repositoryRef", "not a branch or tag"},
	} {
		resp, body := do(t, alice, "POST", e.srv.URL+"/api/v1/projects", "", map[string]any{"prompt": "Build it.", "repository": tc.repo})
		var out struct {
			Error struct{ Message, Field string }
		}
		_ = json.Unmarshal([]byte(body), &out)
		if resp.StatusCode != http.StatusBadRequest || out.Error.Field != tc.field || !strings.Contains(out.Error.Message, tc.says) {
			t.Errorf("%v: %d %s; want 400 on %s saying %q", tc.repo, resp.StatusCode, body, tc.field, tc.says)
		}
		if strings.Contains(body, "secret") {
			t.Errorf("%v: the answer repeats the URL's password: %s", tc.repo, body)
		}
	}
	resp, err := alice.PostForm(e.srv.URL+"/projects", url.Values{"prompt": {"Build it."}, "repositoryUrl": {"ftp://git.example.com/app.git"}})
	if err != nil {
		t.Fatal(err)
	}
	if page := read(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not an http(s) URL") {
		t.Errorf("form: %d\n%s", resp.StatusCode, page)
	}
	// Without a prompt and without a repository there is nothing to make; with a repository the
	// prompt may be left out (here the next check is the missing provider).
	resp, body := do(t, alice, "POST", e.srv.URL+"/api/v1/projects", "", map[string]any{"prompt": " "})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"prompt"`) {
		t.Errorf("no prompt, no repository: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, alice, "POST", e.srv.URL+"/api/v1/projects", "", map[string]any{"repository": map[string]any{"url": "https://git.example.com/team/app.git"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "no_provider") {
		t.Errorf("a repository without a prompt: %d %s, want 409 no_provider", resp.StatusCode, body)
	}
	if n, _ := e.store.DB.NewSelect().Model((*store.Project)(nil)).Count(context.Background()); n != 0 {
		t.Errorf("%d projects stored", n)
	}
}
