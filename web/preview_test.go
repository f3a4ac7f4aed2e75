package web

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/preview"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// previewEnv is doce with previews on, a user owning a project whose "workspace" is app.
type previewEnv struct {
	srv, app   *httptest.Server
	store      *store.Store
	preview    *preview.Preview
	previewURL *url.URL // the project's preview origin, reached through srv
	project    *store.Project
	owner      string // the owner's doce session token
	appSaw     chan *http.Request
}

func newPreviewEnv(t *testing.T) *previewEnv {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLite)
	e := &previewEnv{store: st, appSaw: make(chan *http.Request, 10)}
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "websocket" { // a stand-in: echo raw bytes after the 101
			conn, brw, _ := http.NewResponseController(w).Hijack()
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(brw, buf); err == nil {
				conn.Write(buf)
			}
			return
		}
		if r.URL.Path == "/slow" { // a stream longer than doce's read timeout
			for i := range 3 {
				time.Sleep(600 * time.Millisecond)
				io.WriteString(w, strconv.Itoa(i))
				w.(http.Flusher).Flush()
			}
			return
		}
		e.appSaw <- r
		http.SetCookie(w, &http.Cookie{Name: preview.Cookie, Value: "from-the-app"})
		http.SetCookie(w, &http.Cookie{Name: "app", Value: "kept"})
		io.WriteString(w, "<h1>the app</h1>")
	}))
	t.Cleanup(e.app.Close)
	appPort, _ := strconv.Atoi(e.app.URL[strings.LastIndex(e.app.URL, ":")+1:])

	// The preview base's port is doce's test server's, known only once it listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	e.preview, err = preview.New(st, "http://preview.localhost:"+port, "http://127.0.0.1:"+port, "127.0.0.1", store.RandomToken(32), DoceCookies()...)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Setups: &setups.Service{Store: st, Namespace: "default", UIURL: "http://ui"}, Verifier: &providers.Verifier{}, Preview: e.preview}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	// A short read timeout, which long responses through the preview must outlive.
	e.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: time.Second, ReadTimeout: time.Second}}
	e.srv.Start()
	t.Cleanup(e.srv.Close)

	e.owner = e.user(t, "owner")
	owner, _ := st.UserBySessionToken(ctx, e.owner)
	e.project, _, err = st.CreateProject(ctx, &store.Project{OwnerUserID: owner.ID, Name: "p", Slug: "p", Prompt: "x", ProviderID: "custom", ModelID: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.project.PreviewHostPort = appPort
	if err := st.RecordPorts(ctx, e.project.ID, 0, appPort); err != nil {
		t.Fatal(err)
	}
	e.previewURL, _ = url.Parse(e.preview.URL(e.project.ID))
	return e
}

func (e *previewEnv) user(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	u := &store.User{Username: name, PasswordHash: "x", Role: store.RoleUser}
	if err := e.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	tok, err := e.store.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// do sends a request to doce's listener for host, with cookies, following no redirect. Go's
// resolver need not know *.localhost: the request goes to the test server's address and names
// the host in its Host header, as a browser's would.
func (e *previewEnv) do(t *testing.T, method, host, path string, cookies map[string]string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, nil)
	req.Host = host
	for k, vs := range header {
		req.Header[k] = vs
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// open signs in to the preview as the owner of session: doce's redirect, then the exchange.
// It returns the exchange's answer and the token used.
func (e *previewEnv) open(t *testing.T, session, projectID string) (*http.Response, string) {
	t.Helper()
	resp, body := e.do(t, "GET", e.srv.Listener.Addr().String(), "/projects/"+projectID+"/preview", map[string]string{sessionCookie: session}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /projects/%s/preview: %d %s", projectID, resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != e.previewURL.Host && !strings.HasPrefix(loc.Host, projectID+".") || loc.Path != preview.OpenPath {
		t.Fatalf("redirected to %s, want the preview origin's %s", loc, preview.OpenPath)
	}
	resp, _ = e.do(t, "GET", loc.Host, loc.RequestURI(), nil, nil)
	return resp, loc.RequestURI()
}

func previewCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == preview.Cookie {
			return c
		}
	}
	return nil
}

func TestPreviewSignInProxyAndRefusals(t *testing.T) {
	e := newPreviewEnv(t)
	host := e.previewURL.Host

	resp, openURI := e.open(t, e.owner, e.project.ID)
	ck := previewCookieOf(resp)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || ck == nil {
		t.Fatalf("exchange: %d → %s, cookie %v", resp.StatusCode, resp.Header.Get("Location"), ck)
	}
	if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteNoneMode || !ck.Partitioned || ck.Domain != "" || ck.Path != "/" {
		t.Errorf("preview cookie attributes: %+v", ck)
	}
	if ck.Value == e.owner || strings.Contains(ck.Value, e.owner) {
		t.Error("the preview cookie carries the doce session")
	}

	// The token works once.
	resp, body := e.do(t, "GET", host, openURI, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "used already") || !strings.Contains(body, "/projects/"+e.project.ID) {
		t.Errorf("reused token: %d %s", resp.StatusCode, body)
	}

	// Proxied, without doce's cookies, with doce's framing rule.
	resp, body = e.do(t, "GET", host, "/index.html?q=1", map[string]string{preview.Cookie: ck.Value, sessionCookie: e.owner, "theirs": "1"}, nil)
	if resp.StatusCode != http.StatusOK || body != "<h1>the app</h1>" {
		t.Fatalf("proxied: %d %s", resp.StatusCode, body)
	}
	saw := <-e.appSaw
	if saw.URL.RequestURI() != "/index.html?q=1" || saw.Header.Get("Cookie") != "theirs=1" {
		t.Errorf("the app saw %s with cookies %q, want only theirs=1", saw.URL.RequestURI(), saw.Header.Get("Cookie"))
	}
	if csp := resp.Header.Values("Content-Security-Policy"); len(csp) == 0 || csp[len(csp)-1] != "frame-ancestors http://127.0.0.1:"+e.previewURL.Port() {
		t.Errorf("CSP: %q", csp)
	}
	for _, c := range resp.Cookies() {
		if c.Name == preview.Cookie {
			t.Error("the app's response replaced the preview cookie")
		}
	}

	// Another site's script cannot use the cookie; a navigation from it can (as SameSite=Lax).
	resp, _ = e.do(t, "POST", host, "/", map[string]string{preview.Cookie: ck.Value}, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"cors"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site fetch: %d, want 403", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", host, "/", map[string]string{preview.Cookie: ck.Value}, http.Header{"Sec-Fetch-Site": {"cross-site"}, "Sec-Fetch-Mode": {"navigate"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("cross-site navigation: %d, want 200", resp.StatusCode)
	}
	<-e.appSaw

	// A response streamed for longer than the server's read timeout arrives whole, each
	// part as it is written.
	start := time.Now()
	_, body = e.do(t, "GET", host, "/slow", map[string]string{preview.Cookie: ck.Value}, nil)
	if body != "012" || time.Since(start) < 1800*time.Millisecond {
		t.Errorf("a stream through the preview: %q after %v", body, time.Since(start))
	}

	// A WebSocket goes through (the stand-in app echoes raw bytes after its 101), and lives
	// past the read timeout.
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: "+e.previewURL.String()+"\r\nCookie: "+preview.Cookie+"="+ck.Value+"\r\n\r\n")
	br := bufio.NewReader(conn)
	wsResp, err := http.ReadResponse(br, nil)
	if err != nil || wsResp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", wsResp, err)
	}
	time.Sleep(1500 * time.Millisecond)
	io.WriteString(conn, "hello")
	echo := make([]byte, 5)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "hello" {
		t.Errorf("echo: %q %v", echo, err)
	}

	// No cookie: a page saying where to open the preview.
	resp, body = e.do(t, "GET", host, "/", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "/projects/"+e.project.ID) {
		t.Errorf("no cookie: %d %s", resp.StatusCode, body)
	}
	// The cookie on another project's host, a forged one, doce's session as the cookie.
	other := "0193a7c2-5b1e-7cc0-9a6b-3f2d4e5f6a7b"
	resp, _ = e.do(t, "GET", other+".preview.localhost", "/", map[string]string{preview.Cookie: ck.Value}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie on another project's host: %d", resp.StatusCode)
	}
	resp, _ = e.do(t, "GET", host, "/", map[string]string{preview.Cookie: e.owner}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("doce's session as the preview cookie: %d", resp.StatusCode)
	}
	// doce's pages are not on the preview domain.
	resp, _ = e.do(t, "GET", "preview.localhost", "/projects", map[string]string{sessionCookie: e.owner}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("doce page on the preview domain: %d", resp.StatusCode)
	}

	// Nothing listening on the preview port.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := dead.Addr().(*net.TCPAddr).Port
	dead.Close()
	e.project.PreviewHostPort = deadPort
	e.store.RecordPorts(context.Background(), e.project.ID, 0, deadPort)
	resp, body = e.do(t, "GET", host, "/", map[string]string{preview.Cookie: ck.Value}, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "The app is not running; ask the agent to start it") {
		t.Errorf("nothing listening: %d %s", resp.StatusCode, body)
	}

	// Signed out of doce: the cookie stops working at once.
	e.store.DeleteSession(context.Background(), e.owner)
	resp, body = e.do(t, "GET", host, "/", map[string]string{preview.Cookie: ck.Value}, nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "/projects/"+e.project.ID) {
		t.Errorf("signed out: %d %s", resp.StatusCode, body)
	}
}

func TestPreviewRefusesExpiredAndOthersTokens(t *testing.T) {
	e := newPreviewEnv(t)
	// An expired token: the exchange happens past its minute.
	resp, _ := e.do(t, "GET", e.srv.Listener.Addr().String(), "/projects/"+e.project.ID+"/preview", map[string]string{sessionCookie: e.owner}, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	e.preview.Now = func() time.Time { return time.Now().Add(preview.TokenTTL + time.Second) }
	resp, body := e.do(t, "GET", loc.Host, loc.RequestURI(), nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") || previewCookieOf(resp) != nil {
		t.Errorf("expired token: %d %s", resp.StatusCode, body)
	}
	e.preview.Now = time.Now

	// A token for this project taken to another project's host.
	resp, _ = e.do(t, "GET", e.srv.Listener.Addr().String(), "/projects/"+e.project.ID+"/preview", map[string]string{sessionCookie: e.owner}, nil)
	loc, _ = url.Parse(resp.Header.Get("Location"))
	resp, _ = e.do(t, "GET", "0193a7c2-5b1e-7cc0-9a6b-3f2d4e5f6a7b.preview.localhost", loc.RequestURI(), nil, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token on another project's host: %d", resp.StatusCode)
	}

	// Another user asks doce for a token to this project: no such project.
	stranger := e.user(t, "stranger")
	resp, _ = e.do(t, "GET", e.srv.Listener.Addr().String(), "/projects/"+e.project.ID+"/preview", map[string]string{sessionCookie: stranger}, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user's token request: %d, want 404", resp.StatusCode)
	}
	// Signed out: doce sends to the login page instead of signing a token.
	resp, _ = e.do(t, "GET", e.srv.Listener.Addr().String(), "/projects/"+e.project.ID+"/preview", nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("signed out token request: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}
