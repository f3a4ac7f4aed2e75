package web_test

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/preview"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/web"
)

// newServer is the real router on a real SQLite database with s's settings filled in.
func newServer(t *testing.T, s *web.Server) (*httptest.Server, *store.Store) {
	t.Helper()
	st := storetest.Open(t, storetest.SQLite)
	s.Store, s.SessionTTL, s.Log = st, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil))
	s.Setups, s.Verifier = &setups.Service{Store: st, Namespace: "default", UIURL: "http://ui"}, &providers.Verifier{}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, st
}

// TestSecurityHeadersOnEveryAnswer: pages, the API, static files, errors and refusals all carry
// the CSP (scripts from self, no framing), nosniff and the referrer policy; HSTS only over https.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	for _, secure := range []bool{false, true} {
		srv, _ := newServer(t, &web.Server{SecureCookies: secure})
		c := client()
		check := func(method, path string, body io.Reader, header http.Header) {
			t.Helper()
			req, _ := http.NewRequest(method, srv.URL+path, body)
			for k, v := range header {
				req.Header[k] = v
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'"} {
				if !strings.Contains(csp, want) {
					t.Errorf("%s %s (%d): CSP %q lacks %q", method, path, resp.StatusCode, csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-") {
				t.Errorf("%s %s: CSP %q allows unsafe sources", method, path, csp)
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "same-origin" || h.Get("X-Frame-Options") != "DENY" {
				t.Errorf("%s %s: nosniff %q, referrer %q, frame options %q", method, path, h.Get("X-Content-Type-Options"), h.Get("Referrer-Policy"), h.Get("X-Frame-Options"))
			}
			if hsts := h.Get("Strict-Transport-Security"); (hsts != "") != secure {
				t.Errorf("%s %s: HSTS %q with secure cookies %v", method, path, hsts, secure)
			}
		}
		check("GET", "/setup", nil, nil)
		check("GET", "/login", nil, nil)
		check("GET", "/projects", nil, nil) // a redirect
		check("GET", "/static/project.js", nil, nil)
		check("GET", "/no/such/page", nil, nil)
		check("GET", "/api/v1/projects", nil, nil) // 401 JSON
		check("GET", "/healthz", nil, nil)
		// Refused by cross-origin protection before the router.
		check("POST", "/setup", strings.NewReader("username=x"), http.Header{"Origin": {"http://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "Content-Type": {"application/x-www-form-urlencoded"}})
	}
}

// TestPreviewFrameSource: with previews on, doce's pages may frame preview origins and nothing
// else but themselves.
func TestPreviewFrameSource(t *testing.T) {
	p, err := preview.New(nil, "http://preview.localhost:8080", "http://127.0.0.1:8080", "127.0.0.1", make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := newServer(t, &web.Server{Preview: p})
	resp, err := http.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src 'self' http://*.preview.localhost:8080;") {
		t.Errorf("CSP %q does not allow exactly doce and the previews in frames", csp)
	}
}

// TestTemplatesHoldNoInlineCode keeps the pages passing their CSP: no inline script, event
// handler, style attribute or javascript: URL in any template (scripts and styles live under
// /static).
func TestTemplatesHoldNoInlineCode(t *testing.T) {
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	bad := []*regexp.Regexp{
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	n := 0
	err := filepath.WalkDir("templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		for _, m := range script.FindAllSubmatch(b, -1) {
			if !strings.Contains(string(m[1]), `src="/static/`) || strings.TrimSpace(string(m[2])) != "" {
				t.Errorf("%s: %q is not a script file of doce's", path, m[0])
			}
		}
		for _, re := range bad {
			if m := re.Find(b); m != nil {
				t.Errorf("%s: %q breaks the CSP", path, m)
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("read %d templates: %v", n, err)
	}
}

// TestHostAllowList: a fresh install cannot be claimed through a name other than DOCE_BASE_URL's
// (DNS rebinding): /setup and every page answer 421 to another Host, and no user is made; doce's
// own name works, in any case and with the default port written out; the health probes answer
// any Host.
func TestHostAllowList(t *testing.T) {
	srv, st := newServer(t, &web.Server{BaseURL: "http://doce.test"})
	ctx := context.Background()
	send := func(host, method, path string, form url.Values) (int, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, srv.URL+path, body)
		req.Host = host
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, read(t, resp)
	}
	claim := url.Values{"username": {"mallory"}, "password": {"long enough password"}}
	for _, host := range []string{"rebound.evil.example", "rebound.evil.example:80", "127.0.0.1", "doce.test.evil.example", "localhost"} {
		for _, r := range []struct{ method, path string }{{"GET", "/setup"}, {"POST", "/setup"}, {"GET", "/login"}, {"GET", "/api/v1/projects"}, {"GET", "/metrics"}} {
			var form url.Values
			if r.method == "POST" {
				form = claim
			}
			if code, body := send(host, r.method, r.path, form); code != http.StatusMisdirectedRequest || !strings.Contains(body, "http://doce.test") {
				t.Errorf("%s %s as %s: %d %q, want 421 naming doce's address", r.method, r.path, host, code, body)
			}
		}
		if code, _ := send(host, "GET", "/healthz", nil); code != http.StatusOK {
			t.Errorf("/healthz as %s: %d", host, code)
		}
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("%d users after the refused setups (%v), want 0", n, err)
	}
	for _, host := range []string{"doce.test", "DOCE.test", "doce.test:80", "doce.test."} {
		if code, _ := send(host, "GET", "/setup", nil); code != http.StatusOK {
			t.Errorf("GET /setup as %s: %d, want 200", host, code)
		}
	}
	if code, _ := send("doce.test", "POST", "/setup", claim); code != http.StatusSeeOther {
		t.Fatalf("setup at doce's own name: %d", code)
	}
	if u, err := st.UserByUsername(ctx, "mallory"); err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("the first admin: %+v %v", u, err)
	}
}

// TestNoMetricsOnTheWebPort: with metrics on, the web port still serves no /metrics (they are on
// DOCE_METRICS_ADDR, apart), while requests are counted.
func TestNoMetricsOnTheWebPort(t *testing.T) {
	m := metrics.New()
	defer m.Close()
	srv, _ := newServer(t, &web.Server{Metrics: m})
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if body := read(t, resp); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "doce_http_request_duration_seconds") {
		t.Fatalf("/metrics on the web port: %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `doce_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1`) {
		t.Errorf("the refused request was not counted:\n%.2000s", rec.Body.String())
	}
}

// TestHostPrefixedCookiesOverHTTPS: with secure cookies (an https DOCE_BASE_URL) the session and
// device cookies are __Host- cookies (Secure, Path=/, no Domain), and a session under the old
// bare name is not read: its holder signs in again.
func TestHostPrefixedCookiesOverHTTPS(t *testing.T) {
	srv, st := newServer(t, &web.Server{SecureCookies: true})
	ctx := context.Background()
	resp, err := client().PostForm(srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v %v", resp, err)
	}
	check := func(resp *http.Response, names ...string) {
		t.Helper()
		got := map[string]*http.Cookie{}
		for _, c := range resp.Cookies() {
			got[c.Name] = c
		}
		for _, n := range names {
			c := got[n]
			if c == nil || !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly {
				t.Errorf("cookie %s: %+v (all: %v)", n, c, resp.Header.Values("Set-Cookie"))
			}
		}
	}
	check(resp, "__Host-doce_session")
	resp, err = client().PostForm(srv.URL+"/login", url.Values{"username": {"admin"}, "password": {"long enough password"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %v %v", resp, err)
	}
	check(resp, "__Host-doce_session", "__Host-doce_device")

	// A live session's token under the old name (or the new name, which works) ...
	u, _ := st.UserByUsername(ctx, "admin")
	token, _ := st.CreateSession(ctx, u.ID, time.Hour)
	for name, want := range map[string]int{"doce_session": http.StatusSeeOther, "__Host-doce_session": http.StatusOK} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/projects", nil)
		req.AddCookie(&http.Cookie{Name: name, Value: token})
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("a session under %s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}
