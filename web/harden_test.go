package web_test

import (
	"context"
	"encoding/json"
	"errors"
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
	{method: "POST", path: "/projects", form: "repositoryUrl"},
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
	{method: "POST", path: "/ops/hosts/{value}/drain"},
	{method: "POST", path: "/api/v1/ops/hosts/{value}/undrain"},
	{method: "GET", path: "/settings/providers/{value}/oauth"},
	{method: "GET", path: "/api/v1/connections/oauth/{value}"},
	{method: "GET", path: "/settings/providers?tab={value}"},
	{method: "GET", path: "/account?done={value}"},
	{method: "DELETE", path: "/api/v1/forges/{value}"},
	{method: "POST", path: "/settings/forges/{value}/disconnect"},
	{method: "POST", path: "/api/v1/forges", json: "kind"},
	{method: "POST", path: "/api/v1/forges", json: "baseURL"},
	{method: "POST", path: "/api/v1/forges", json: "token"},
	{method: "POST", path: "/settings/forges", form: "kind"},
	{method: "POST", path: "/settings/forges", form: "baseURL"},
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
	// The login throttle counts but never locks here, so fuzzed usernames keep reaching the
	// database instead of a 429 (TestLoginThrottle covers the locking).
	never := store.Backoff{Free: 1 << 30, Base: time.Second, Max: time.Second, Forget: time.Hour}
	s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Setups: &setups.Service{Store: st, Namespace: "default"}, Verifier: &providers.Verifier{},
		LoginBackoff: map[string]store.Backoff{store.ThrottleAccount: never, store.ThrottleAddress: never}}
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
		c := e.admin
		if r.path == "/login" {
			c = client() // signed out
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
	var body struct {
		Error struct{ Code, Message, Field string }
	}
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

// TestLoginThrottle: wrong passwords lock the account after five, with 429 and Retry-After,
// the same for a username that does not exist; the right password is refused while locked; the
// lockout is audited, shared by a second server on the same database, and an administrator
// clears it.
func TestLoginThrottle(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "doce.db")
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := migrationsUp(st); err != nil {
		t.Fatal(err)
	}
	backoff := map[string]store.Backoff{
		store.ThrottleAccount: {Free: 5, Base: time.Minute, Max: time.Hour, Forget: time.Hour},
		store.ThrottleAddress: {Free: 100, Base: time.Minute, Max: time.Hour, Forget: time.Hour},
	}
	serve := func(st *store.Store) string {
		s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Setups: &setups.Service{Store: st}, Verifier: &providers.Verifier{}, LoginBackoff: backoff}
		h, err := s.Handler()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	one := serve(st)
	// A second web process on the same database file.
	st2, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	two := serve(st2)

	admin := client()
	if resp, _ := admin.PostForm(one+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	login := func(base, user, pass string) (int, string, string) {
		resp, err := client().PostForm(base+"/login", url.Values{"username": {user}, "password": {pass}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After"), read(t, resp)
	}
	for _, user := range []string{"admin", "nobody-here"} {
		for i := range 5 {
			if code, _, _ := login(one, user, "wrong password"); code != http.StatusUnauthorized {
				t.Fatalf("%s failure %d: %d, want 401", user, i+1, code)
			}
		}
		// Locked on both servers, whether or not the user exists, and in any case.
		for _, base := range []string{one, two} {
			code, retry, body := login(base, strings.ToUpper(user[:1])+user[1:], "wrong password")
			secs, _ := strconv.Atoi(retry)
			if code != http.StatusTooManyRequests || secs < 50 || secs > 60 || !strings.Contains(body, "Too many failed sign-ins") {
				t.Fatalf("%s locked: %d Retry-After %q, want 429 with about 60 s", user, code, retry)
			}
		}
	}
	if code, _, _ := login(two, "admin", "long enough password"); code != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", code)
	}
	// Audited, and listed for administrators.
	ctx := context.Background()
	evs, _ := st.AuditEvents(ctx, 50)
	audited := map[string]bool{}
	for _, ev := range evs {
		if ev.Action == "login.locked" {
			audited[ev.TargetID] = true
		}
	}
	if !audited["admin@127.0.0.1"] || !audited["nobody-here@127.0.0.1"] {
		t.Errorf("lockouts audited: %v", audited)
	}
	// The admin's own session still works; they clear their account's lockout.
	resp, _ := admin.Get(one + "/admin/users")
	if body := read(t, resp); !strings.Contains(body, "nobody-here") || !strings.Contains(body, "Failed sign-ins") {
		t.Error("the users page does not list the lockouts")
	}
	resp, _ = admin.Get(two + "/api/v1/admin/lockouts")
	var list struct{ Lockouts []store.LoginThrottle }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Lockouts) != 3 { // two accounts from this address, and the address
		t.Errorf("API lists %d lockouts, want 3: %+v", len(list.Lockouts), list.Lockouts)
	}
	resp, _ = admin.Post(two+"/api/v1/admin/lockouts/clear", "application/json", strings.NewReader(`{"kind":"account","subject":"admin@127.0.0.1"}`))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("clear: %d %s", resp.StatusCode, read(t, resp))
	}
	resp.Body.Close()
	if code, _, _ := login(one, "admin", "long enough password"); code != http.StatusSeeOther {
		t.Fatalf("login after clearing: %d, want 303", code)
	}
	resp, _ = admin.PostForm(one+"/admin/lockouts/clear", url.Values{"kind": {"account"}, "subject": {"nobody-here@127.0.0.1"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("clear from the page: %d", resp.StatusCode)
	}
	if code, _, _ := login(one, "nobody-here", "x"); code != http.StatusUnauthorized {
		t.Errorf("unknown user after clearing: %d, want 401", code)
	}
	evs, _ = st.AuditEvents(ctx, 50)
	unlocks := 0
	for _, ev := range evs {
		if ev.Action == "login.unlock" {
			unlocks++
		}
	}
	if unlocks != 2 {
		t.Errorf("%d unlocks audited, want 2", unlocks)
	}
}

// TestLoginThrottleByAddress: many usernames tried from one address lock the address.
func TestLoginThrottleByAddress(t *testing.T) {
	e := newEnv(t)
	var last int
	var retry string
	for i := range 21 {
		resp, err := client().PostForm(e.srv.URL+"/login", url.Values{"username": {"user" + strconv.Itoa(i)}, "password": {"guess"}})
		if err != nil {
			t.Fatal(err)
		}
		last, retry = resp.StatusCode, resp.Header.Get("Retry-After")
		resp.Body.Close()
	}
	if last != http.StatusTooManyRequests || retry == "" {
		t.Fatalf("21st guess from one address: %d Retry-After %q, want 429", last, retry)
	}
}

// TestFormBodyLimit: a form is capped like the API (256 KiB), long fields get a message, and
// no page echoes a huge input.
func TestFormBodyLimit(t *testing.T) {
	e := newEnv(t)
	huge := strings.Repeat("A", 9600<<10)
	resp, err := client().PostForm(e.srv.URL+"/login", url.Values{"username": {huge}, "password": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	body := read(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over 256 KiB") || len(body) > 20<<10 {
		t.Fatalf("9.6 MB login: %d, %d bytes back", resp.StatusCode, len(body))
	}
	long := strings.Repeat("b", 100<<10)
	resp, _ = client().PostForm(e.srv.URL+"/login", url.Values{"username": {long}, "password": {"x"}})
	if body := read(t, resp); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, long[:1000]) {
		t.Fatalf("100 KiB username: %d, echoed: %v", resp.StatusCode, strings.Contains(body, long[:1000]))
	}
	c := e.user(t, "alice")
	resp, _ = c.PostForm(e.srv.URL+"/projects", url.Values{"prompt": {strings.Repeat("word ", 30000)}})
	if body := read(t, resp); resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusConflict || len(body) > 300<<10 {
		t.Fatalf("long prompt: %d", resp.StatusCode)
	}
	resp, _ = c.PostForm(e.srv.URL+"/account", url.Values{"currentPassword": {strings.Repeat("p", 300<<10)}})
	if body := read(t, resp); resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "over 256 KiB") {
		t.Fatalf("300 KiB account form: %d", resp.StatusCode)
	}
}

// TestSmallerFindings: usernames ignore case, user creation and disabling are audited, an empty
// audit list is [], and HEAD is answered where GET is.
func TestSmallerFindings(t *testing.T) {
	e := newEnv(t)
	admin := client()
	if resp, _ := admin.PostForm(e.srv.URL+"/setup", url.Values{"username": {"Admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	resp, _ := admin.Post(e.srv.URL+"/api/v1/admin/users", "application/json", strings.NewReader(`{"username":"alice","password":"alice password"}`))
	var created struct{ User struct{ ID string } }
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create alice: %d", resp.StatusCode)
	}
	resp, _ = admin.Post(e.srv.URL+"/api/v1/admin/users", "application/json", strings.NewReader(`{"username":"ALICE","password":"alice password"}`))
	if body := read(t, resp); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "username_taken") {
		t.Fatalf("create ALICE next to alice: %d %s", resp.StatusCode, body)
	}
	if err := e.store.CreateUser(context.Background(), &store.User{Username: "aLiCe", PasswordHash: "x", Role: store.RoleUser}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("store accepts aLiCe next to alice: %v", err)
	}
	alice := client()
	if resp, _ := alice.PostForm(e.srv.URL+"/login", url.Values{"username": {"Alice"}, "password": {"alice password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login as Alice: %d", resp.StatusCode)
	}
	// Alice has done nothing yet: her audit is an empty list.
	resp, _ = alice.Get(e.srv.URL + "/api/v1/audit")
	if body := read(t, resp); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"events":[]}` {
		t.Errorf("empty audit: %d %s, want {\"events\":[]}", resp.StatusCode, body)
	}
	for _, path := range []string{"/api/v1/audit", "/projects", "/healthz", "/api/v1/openapi.json", "/login"} {
		req, _ := http.NewRequest(http.MethodHead, e.srv.URL+path, nil)
		resp, err := alice.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := read(t, resp); resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %d with %d bytes, want 200 without a body", path, resp.StatusCode, len(body))
		}
	}
	req, _ := http.NewRequest(http.MethodHead, e.srv.URL+"/api/v1/projects/x/retry", nil)
	if resp, _ := alice.Do(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD on a POST-only route: %d, want 405", resp.StatusCode)
	}
	resp, _ = admin.Post(e.srv.URL+"/api/v1/admin/users/"+created.User.ID+"/disable", "application/json", nil)
	resp.Body.Close()
	resp, _ = admin.Get(e.srv.URL + "/api/v1/ops/audit")
	var audit struct{ Events []store.AuditEvent }
	json.NewDecoder(resp.Body).Decode(&audit)
	resp.Body.Close()
	got := map[string]string{}
	for _, ev := range audit.Events {
		got[ev.Action+" "+ev.TargetID] = ev.Detail
	}
	if _, ok := got["user.create "+created.User.ID]; !ok {
		t.Errorf("creating alice is not audited: %v", got)
	}
	if _, ok := got["user.disable "+created.User.ID]; !ok {
		t.Errorf("disabling alice is not audited: %v", got)
	}
}
