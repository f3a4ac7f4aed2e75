package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/web"
)

// These tests run the real router on a real SQLite database. They stop short of Vault and
// Temporal, which the e2e tests cover.

// loopbackAllowed lets key checks reach the tests' own servers on loopback.
var loopbackAllowed, _ = outbound.Parse("127.0.0.1")

type env struct {
	srv   *httptest.Server
	store *store.Store
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with a connector to workspaces (none answer in these tests).
func newEnvWith(t *testing.T, ag *agent.Connector) *env {
	t.Helper()
	st := storetest.Open(t, storetest.SQLite)
	s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Setups: &setups.Service{Store: st, Namespace: "default", UIURL: "http://ui"}, Verifier: &providers.Verifier{HTTP: loopbackAllowed.Client(10 * time.Second)}, Outbound: loopbackAllowed.Client(10 * time.Second), Agent: ag}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: st}
}

func client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func read(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (e *env) user(t *testing.T, name string) *http.Client {
	t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte("password-"+name), bcrypt.MinCost)
	if err := e.store.CreateUser(context.Background(), &store.User{Username: name, PasswordHash: string(hash), Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	c := client()
	resp, err := c.PostForm(e.srv.URL+"/login", url.Values{"username": {name}, "password": {"password-" + name}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %v %v", name, resp.StatusCode, err)
	}
	return c
}

func TestFirstRun(t *testing.T) {
	e := newEnv(t)
	c := client()
	resp, _ := c.Get(e.srv.URL + "/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/setup" {
		t.Fatalf("GET / before setup: %d → %s, want 303 → /setup", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = c.PostForm(e.srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"short"}})
	body := read(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "at least 10 characters") || !strings.Contains(body, `value="admin"`) {
		t.Fatalf("short password: %d, want 400 with the reason and the username kept", resp.StatusCode)
	}
	resp, _ = c.PostForm(e.srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	cookie := resp.Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Errorf("session cookie %q lacks HttpOnly or SameSite", cookie)
	}
	resp, _ = c.Get(e.srv.URL + "/settings/providers")
	if body := read(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "No provider connected yet") {
		t.Fatalf("providers page: %d", resp.StatusCode)
	}
	resp, _ = client().PostForm(e.srv.URL+"/setup", url.Values{"username": {"other"}, "password": {"long enough password"}})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("second setup: %d, want 409", resp.StatusCode)
	}
}

func TestLoginLogout(t *testing.T) {
	e := newEnv(t)
	e.user(t, "alice")
	c := client()
	resp, _ := c.PostForm(e.srv.URL+"/login", url.Values{"username": {"alice"}, "password": {"wrong"}})
	if body := read(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong username or password.") {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm(e.srv.URL+"/login", url.Values{"username": {"nobody"}, "password": {"wrong"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown user: %d", resp.StatusCode)
	}
	c = e.user(t, "bob")
	resp, _ = c.Get(e.srv.URL + "/projects")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("projects after login: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm(e.srv.URL+"/logout", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	resp, _ = c.Get(e.srv.URL + "/projects")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("projects after logout: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestAPIErrorsAreJSON(t *testing.T) {
	e := newEnv(t)
	resp, _ := client().Get(e.srv.URL + "/api/v1/projects")
	var body struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusUnauthorized || body.Error.Code != "unauthenticated" {
		t.Fatalf("anonymous API: %d %+v", resp.StatusCode, body)
	}
	c := e.user(t, "alice")
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/nope", "", 404},
		{"POST", "/api/v1/connections", "{not json", 400},
		{"POST", "/api/v1/connections", `{"providerId":"nope","apiKey":"k"}`, 400},
		{"POST", "/api/v1/projects", `{"prompt":""}`, 400},
		{"POST", "/api/v1/projects", `{"prompt":"` + strings.Repeat("x", 300<<10) + `"}`, 413},
		{"POST", "/api/v1/projects", `{"prompt":"build it"}`, 409},
		{"DELETE", "/api/v1/projects", "", 405},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Error struct{ Code, Message string }
		}
		raw := read(t, resp)
		if err := json.Unmarshal([]byte(raw), &got); err != nil || got.Error.Message == "" {
			t.Errorf("%s %s: body %.100q is not a JSON error", tc.method, tc.path, raw)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, resp.StatusCode, got.Error.Message, tc.want)
		}
		if strings.Contains(raw, "goroutine") || strings.Contains(raw, ".go:") {
			t.Errorf("%s %s leaks internals: %.200s", tc.method, tc.path, raw)
		}
	}
}

func TestUsersSeeOnlyTheirProjects(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	a, _ := e.store.UserByUsername(context.Background(), "alice")
	p := &store.Project{OwnerUserID: a.ID, Name: "Secret plan", Slug: "secret-plan", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
	if _, _, err := e.store.CreateProject(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/projects/" + p.ID, "/api/v1/projects/" + p.ID} {
		resp, _ := bob.Get(e.srv.URL + path)
		if body := read(t, resp); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Secret plan") {
			t.Errorf("bob GET %s: %d, want 404 without the project", path, resp.StatusCode)
		}
		resp, _ = alice.Get(e.srv.URL + path)
		if body := read(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Secret plan") {
			t.Errorf("alice GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, _ := bob.Get(e.srv.URL + "/api/v1/projects")
	if body := read(t, resp); strings.Contains(body, p.ID) {
		t.Error("bob's project list shows alice's project")
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t)
	c := e.user(t, "alice")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/settings/providers", strings.NewReader("providerId=openai&apiKey=sk-x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
}

func TestConnectFormKeepsInputButNotKey(t *testing.T) {
	e := newEnv(t)
	c := e.user(t, "alice")
	resp, _ := c.PostForm(e.srv.URL+"/settings/providers", url.Values{
		"providerId": {"custom"}, "apiKey": {"sk-typed-secret"}, "baseURL": {"ftp://llm"}, "models": {"m1"},
	})
	body := read(t, resp)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "is not an http(s) URL") {
		t.Fatalf("bad base URL: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `value="ftp://llm"`) || !strings.Contains(body, `value="m1"`) {
		t.Error("the form lost the user's input")
	}
	if strings.Contains(body, "sk-typed-secret") {
		t.Error("the form echoed the key back")
	}
}

func TestOpsIsForAdminsOnly(t *testing.T) {
	e := newEnv(t)
	c := e.user(t, "alice")
	for _, path := range []string{"/ops", "/api/v1/ops/setups"} {
		resp, _ := c.Get(e.srv.URL + path)
		if body := read(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Only administrators") {
			t.Errorf("non-admin GET %s: %d", path, resp.StatusCode)
		}
	}
	resp, _ := c.PostForm(e.srv.URL+"/ops/retry", url.Values{"projectId": {"x"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin POST /ops/retry: %d", resp.StatusCode)
	}
}

func TestLegacyPasswordSignsInAndIsUpgraded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const nodeScrypt = "00112233445566778899aabbccddeeff:b22c506984b43049ab4ccc95dc0590651687da2899f098acf1858e359104ca2da48d45a07fd03a99564196b7e99023c3f16a0acb2e167a5466600f6189b8c938"
	e.store.CreateUser(ctx, &store.User{Username: "pablo", PasswordHash: store.LegacyScryptPrefix + nodeScrypt, Role: store.RoleAdmin})
	e.store.CreateUser(ctx, &store.User{Username: "unknown", PasswordHash: store.ResetRequired, Role: store.RoleUser})
	resp, _ := client().PostForm(e.srv.URL+"/login", url.Values{"username": {"pablo"}, "password": {"legacy password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("legacy login: %d", resp.StatusCode)
	}
	u, _ := e.store.UserByUsername(ctx, "pablo")
	if !strings.HasPrefix(u.PasswordHash, "$2") {
		t.Errorf("hash not upgraded to bcrypt: %.15q", u.PasswordHash)
	}
	resp, _ = client().PostForm(e.srv.URL+"/login", url.Values{"username": {"pablo"}, "password": {"legacy password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login after upgrade: %d", resp.StatusCode)
	}
	resp, _ = client().PostForm(e.srv.URL+"/login", url.Values{"username": {"unknown"}, "password": {"anything"}})
	if body := read(t, resp); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "must be reset") {
		t.Errorf("reset-required login: %d", resp.StatusCode)
	}
}

func TestConnectWithVerifyRefusedKey(t *testing.T) {
	llm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"message":"invalid api key"}}`))
	}))
	defer llm.Close()
	e := newEnv(t)
	c := e.user(t, "alice")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v1/connections", strings.NewReader(
		`{"providerId":"custom","apiKey":"sk-wrong","baseURL":"`+llm.URL+`/v1","models":"m","verify":true}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct{ Field, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusBadRequest || body.Error.Field != "apiKey" || body.Error.Message != "Custom (OpenAI-compatible) refused this key: invalid api key" {
		t.Fatalf("refused key: %d %+v", resp.StatusCode, body)
	}
}

func TestAccountAndUsers(t *testing.T) {
	e := newEnv(t)
	c := client()
	resp, _ := c.PostForm(e.srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	// An admin adds a user; the username must be free.
	resp, _ = c.PostForm(e.srv.URL+"/admin/users", url.Values{"username": {"bob"}, "password": {"bob password 1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("add user: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm(e.srv.URL+"/admin/users", url.Values{"username": {"bob"}, "password": {"bob password 1"}})
	if body := read(t, resp); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "username is taken") || !strings.Contains(body, `value="bob"`) {
		t.Fatalf("duplicate user: %d", resp.StatusCode)
	}
	bob := client()
	if resp, _ := bob.PostForm(e.srv.URL+"/login", url.Values{"username": {"bob"}, "password": {"bob password 1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob login: %d", resp.StatusCode)
	}
	// Bob changes his password: the current one must be right.
	resp, _ = bob.PostForm(e.srv.URL+"/account", url.Values{"currentPassword": {"wrong"}, "newPassword": {"bob password 2"}})
	if body := read(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "not your current password") {
		t.Fatalf("wrong current password: %d", resp.StatusCode)
	}
	resp, _ = bob.PostForm(e.srv.URL+"/account", url.Values{"currentPassword": {"bob password 1"}, "newPassword": {"bob password 2"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", resp.StatusCode)
	}
	if resp, _ := client().PostForm(e.srv.URL+"/login", url.Values{"username": {"bob"}, "password": {"bob password 2"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", resp.StatusCode)
	}
	// Bob is no admin; the admin disables him and his session ends.
	if resp, _ := bob.Get(e.srv.URL + "/admin/users"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob on /admin/users: %d", resp.StatusCode)
	}
	u, _ := e.store.UserByUsername(context.Background(), "bob")
	resp, _ = c.PostForm(e.srv.URL+"/admin/users/"+u.ID+"/disable", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", resp.StatusCode)
	}
	if resp, _ := bob.Get(e.srv.URL + "/projects"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("disabled bob still signed in: %d", resp.StatusCode)
	}
	if resp, _ := client().PostForm(e.srv.URL+"/login", url.Values{"username": {"bob"}, "password": {"bob password 2"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("disabled bob signs in: %d", resp.StatusCode)
	}
}

// Stop and start refuse what cannot be done now with a 409 saying why, and another user's
// project is not found. (Accepted ones start workflows: the e2e tests cover those.)
func TestStopAndStartRefusals(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	a, _ := e.store.UserByUsername(context.Background(), "alice")
	p := &store.Project{OwnerUserID: a.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
	if _, _, err := e.store.CreateProject(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	call := func(c *http.Client, action string) (int, string) {
		resp, err := c.Post(e.srv.URL+"/api/v1/projects/"+p.ID+"/"+action, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal([]byte(read(t, resp)), &got)
		return resp.StatusCode, got.Error.Message
	}
	for _, tc := range []struct {
		status      status.Project
		action, msg string
	}{
		{status.SettingUp, "stop", "still being set up"},
		{status.SettingUp, "start", "still being set up"},
		{status.Ready, "start", "already running"},
		{status.Stopped, "stop", "already stopped"},
		{status.Stopping, "start", "is stopping"},
		{status.Starting, "stop", "is starting"},
		{status.SetupFailed, "start", "Retry the setup first"},
	} {
		p.Status = tc.status
		if _, err := e.store.TransitionProject(context.Background(), p.ID, status.Live, p.Status, ""); err != nil {
			t.Fatal(err)
		}
		code, msg := call(alice, tc.action)
		if code != http.StatusConflict || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s of a %s project: %d %q, want 409 saying %q", tc.action, tc.status, code, msg, tc.msg)
		}
		if got, _ := e.store.Project(context.Background(), p.ID); got.Status != tc.status {
			t.Errorf("a refused %s moved the project from %s to %s", tc.action, tc.status, got.Status)
		}
	}
	for _, action := range []string{"stop", "start"} {
		if code, _ := call(bob, action); code != http.StatusNotFound {
			t.Errorf("bob %s of alice's project: %d, want 404", action, code)
		}
	}
}

// TestFinishedSetupProgressIsReadFromTheDatabase: this server has no Temporal client at all,
// so a progress query would fail the request; finished setups answer from their row.
func TestFinishedSetupProgressIsReadFromTheDatabase(t *testing.T) {
	e := newEnv(t)
	alice := e.user(t, "alice")
	a, _ := e.store.UserByUsername(context.Background(), "alice")
	ctx := context.Background()
	ready := &store.Project{OwnerUserID: a.ID, Name: "Ready", Slug: "ready", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
	failed := &store.Project{OwnerUserID: a.ID, Name: "Failed", Slug: "failed", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
	for _, p := range []*store.Project{ready, failed} {
		if _, _, err := e.store.CreateProject(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	ready.Status, ready.WorkflowID = status.Ready, "project-setup:"+ready.ID
	failed.Status, failed.WorkflowID = status.SetupFailed, "project-setup:"+failed.ID
	failed.SetupProgress = `{"state":"waiting-for-operator","runs":1,"steps":[{"name":"docker.composeUp","title":"Start the workspace","status":"failed","error":"no image"}]}`
	for _, p := range []*store.Project{ready, failed} {
		if err := e.store.RecordSetupStarted(ctx, p.ID, p.WorkflowID); err != nil {
			t.Fatal(err)
		}
		if err := e.store.RecordSetupProgress(ctx, p.ID, "", p.Status, "", p.SetupProgress); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		p    *store.Project
		want []string
	}{
		{ready, []string{`"state":"completed"`, `"name":"opencode.sendInitialPrompt"`, `"status":"done"`}},
		{failed, []string{`"state":"waiting-for-operator"`, `"error":"no image"`}},
	} {
		resp, err := alice.Get(e.srv.URL + "/api/v1/projects/" + tc.p.ID)
		if err != nil {
			t.Fatal(err)
		}
		body := read(t, resp)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", tc.p.Name, resp.StatusCode, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: %s lacks %s", tc.p.Name, body, w)
			}
		}
	}
}
