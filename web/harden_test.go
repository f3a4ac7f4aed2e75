package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/web"
)

// hostileRoutes are the routes the outside test found answering 500 to a NUL byte, with the
// place each takes text: {value} in the path, or a form or JSON field set to it.
var hostileRoutes = []struct {
	method, path, form, json string
}{
	{method: "POST", path: "/login", form: "username"},
	{method: "POST", path: "/login", form: "password"},
	{method: "GET", path: "/api/v1/projects/{value}"},
	{method: "POST", path: "/api/v1/projects/{value}/retry"},
	{method: "POST", path: "/api/v1/projects/{value}/cancel"},
	{method: "DELETE", path: "/api/v1/projects/{value}"},
	{method: "GET", path: "/projects/{value}"},
	{method: "GET", path: "/projects/{value}/events"},
	{method: "POST", path: "/projects/{value}/cancel"},
	{method: "POST", path: "/projects/{value}/retry"},
	{method: "POST", path: "/projects/{value}/delete"},
	{method: "DELETE", path: "/api/v1/connections/{value}"},
	{method: "POST", path: "/settings/providers/{value}/disconnect"},
	{method: "POST", path: "/settings/providers/{value}/preferred"},
	{method: "PUT", path: "/api/v1/settings/preferred-provider", json: "preferredProviderId"},
	{method: "POST", path: "/api/v1/admin/users/{value}/disable"},
	{method: "POST", path: "/admin/users/{value}/disable"},
	{method: "POST", path: "/api/v1/projects", json: "prompt"},
	{method: "POST", path: "/api/v1/projects", json: "name"},
	{method: "POST", path: "/api/v1/projects", json: "requestId"},
	{method: "POST", path: "/projects", form: "prompt"},
	{method: "POST", path: "/projects", form: "modelId"},
	{method: "POST", path: "/settings/providers", form: "providerId"},
	{method: "POST", path: "/settings/providers", form: "baseURL"},
	{method: "POST", path: "/api/v1/connections", json: "providerId"},
	{method: "POST", path: "/api/v1/connections", json: "wellKnownUrl"},
	{method: "POST", path: "/admin/users", form: "username"},
	{method: "POST", path: "/api/v1/admin/users", json: "username"},
	{method: "POST", path: "/api/v1/admin/lockouts/clear", json: "subject"},
	{method: "POST", path: "/admin/lockouts/clear", form: "subject"},
	{method: "POST", path: "/api/v1/ops/setups/retry", json: "projectIds"},
	{method: "POST", path: "/ops/cancel", form: "projectId"},
	{method: "GET", path: "/settings/providers/{value}/oauth"},
	{method: "GET", path: "/api/v1/connections/oauth/{value}"},
	{method: "GET", path: "/settings/providers?tab={value}"},
	{method: "GET", path: "/account?done={value}"},
	{method: "GET", path: "/api/v1/nope/{value}"},
}

// hostileValues are the kinds of input the outside test sent.
var hostileValues = []string{"\x00", "a\x00b", "\xff\xfe", "\xc3\x28", strings.Repeat("x", 300), strings.Repeat("é", 5000), "../../etc/passwd", "%00", "' OR 1=1 --", "<script>alert(1)</script>", "\u202e", " "}

// fuzzEnv is a signed-in administrator on the real router over a real SQLite file. It has no
// provider connected and no project, so no valid input reaches Temporal or Vault (which the e2e
// hostile-input test covers): every answer is decided by doce's own checks and the database.
type fuzzEnv struct {
	srv   *httptest.Server
	admin *http.Client
}

func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := migrationsUp(st); err != nil {
		t.Fatal(err)
	}
	s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Setups: &setups.Service{Store: st, Namespace: "default"}, Verifier: &providers.Verifier{}}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := client()
	resp, err := c.PostForm(srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v %v", resp, err)
	}
	return &fuzzEnv{srv: srv, admin: c}
}

// request builds route r with value v in its text input.
func (e *fuzzEnv) request(t testing.TB, r struct{ method, path, form, json string }, v string) *http.Request {
	t.Helper()
	path := strings.ReplaceAll(r.path, "{value}", url.PathEscape(v))
	if strings.Contains(r.path, "?") {
		base, q, _ := strings.Cut(r.path, "?")
		k, _, _ := strings.Cut(q, "=")
		path = base + "?" + url.Values{k: {v}}.Encode()
	}
	var body io.Reader
	ct := ""
	switch {
	case r.form != "":
		f := url.Values{r.form: {v}}
		if r.form != "password" {
			f.Set("password", "some password")
		}
		body, ct = strings.NewReader(f.Encode()), "application/x-www-form-urlencoded"
	case r.json != "":
		var field any = v
		if r.json == "projectIds" {
			field = []string{v}
		}
		b, _ := json.Marshal(map[string]any{r.json: field})
		body, ct = strings.NewReader(string(b)), "application/json"
	}
	req, err := http.NewRequest(r.method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	return req
}

// startsWorkflow reports whether v is valid input with which route r would start a workflow:
// a known provider's sign-in. The fuzz env has no Temporal; the e2e test sends those.
func startsWorkflow(path, v string) bool {
	_, known := providers.Lookup(v)
	return known && strings.Contains(path, "oauth")
}

func (e *fuzzEnv) check(t testing.TB, v string) {
	t.Helper()
	for _, r := range hostileRoutes {
		if startsWorkflow(r.path, v) {
			continue
		}
		req := e.request(t, r, v)
		if r.path == "/login" {
			// Signed out, and from a fresh client so the login throttle does not decide.
			req.Header.Set("X-Forwarded-For", "192.0.2."+strconv.Itoa(len(v)%250))
		}
		c := e.admin
		if r.path == "/login" {
			c = client()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := c.Do(req.WithContext(ctx))
		if err != nil {
			cancel()
			t.Fatalf("%s %s with %q: %v", r.method, r.path, v, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		cancel()
		if resp.StatusCode >= 500 {
			t.Errorf("%s %s with %q: %d %.300s", r.method, r.path, v, resp.StatusCode, b)
		}
		if resp.StatusCode >= 400 && !strings.Contains(string(b), `role="alert"`) && !strings.Contains(string(b), `"message":`) {
			t.Errorf("%s %s with %q: %d without a message: %.300s", r.method, r.path, v, resp.StatusCode, b)
		}
	}
}

// TestHostileInputNever5xx replays the outside test's findings (and the fuzz corpus's seeds)
// as a normal test: NUL, invalid UTF-8 and long text on every route get a 4xx.
func TestHostileInputNever5xx(t *testing.T) {
	e := newFuzzEnv(t)
	for _, v := range hostileValues {
		e.check(t, v)
	}
	// The message says what is wrong.
	resp, err := e.admin.Get(e.srv.URL + "/api/v1/projects/%00")
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error struct{ Code, Message, Field string } }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || body.Error.Field != "id" || !strings.Contains(body.Error.Message, "NUL byte") {
		t.Errorf("GET /api/v1/projects/%%00: %d %+v, want 400 naming the NUL byte in id", resp.StatusCode, body.Error)
	}
	resp, _ = e.admin.Post(e.srv.URL+"/api/v1/projects", "application/json", strings.NewReader(`{"prompt":"build \u0000 it"}`))
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || body.Error.Field != "prompt" || !strings.Contains(body.Error.Message, "NUL byte") {
		t.Errorf("prompt with NUL: %d %+v", resp.StatusCode, body.Error)
	}
}

// FuzzRouter sends fuzzed text to every route's text input on the real router and database:
// no input may make doce answer 5xx. `go test -run '^$' -fuzz FuzzRouter -fuzztime 60s ./web/`.
func FuzzRouter(f *testing.F) {
	for _, v := range hostileValues {
		f.Add(v)
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, v string) {
		e.check(t, v)
	})
}

func migrationsUp(st *store.Store) ([]string, error) {
	return migrations.Up(context.Background(), st.DB)
}
