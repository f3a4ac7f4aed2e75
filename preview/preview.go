// Package preview serves what the agent serves on the workspace's AppPort, shown to the project's
// owner on an origin of its own (<project-id>.<preview host>), so the preview's scripts can
// never act on doce with the owner's session.
//
// The flow: the project page frames /projects/{id}/preview (doce's origin, the owner's
// session), which signs a one-time token valid for a minute and redirects to
// <preview origin>/__doce/open?token=…; the preview origin checks the token, records it as
// used, sets its own cookie (host-only, HttpOnly) and redirects to /. Every later request on
// the preview host carries that cookie and is proxied to the workspace's published preview
// port, and nothing else, while the owner's doce session lives.
package preview

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

const (
	// TokenTTL is how long the one-time token of OpenURL opens the preview.
	TokenTTL         = time.Minute
	previewCookieTTL = 8 * time.Hour // and never past the doce session, checked on every request
	// Cookie is the preview origin's own credential. __Host- makes browsers keep it to
	// the exact host that set it (Secure, Path=/, no Domain): one project's preview never sees
	// another's.
	Cookie = "__Host-doce_preview"
	// OpenPath is where the preview origin exchanges a token for its cookie.
	OpenPath = "/__doce/open"

	kindOpen   = "open"   // the one-time token in the redirect
	kindCookie = "cookie" // the preview origin's cookie
)

// Preview serves projects' previews. Build it with New; a nil *Preview means previews are off
// (no DOCE_PREVIEW_BASE_URL).
type Preview struct {
	Store *store.Store
	// BaseURL is the preview origin projects get hosts under, e.g. http://preview.localhost:8080.
	base *url.URL
	// doceOrigin may frame previews (CSP frame-ancestors) and is where refusals send people.
	doceOrigin    string
	workspaceHost string // where workspaces publish their preview ports
	// Addresses, when set, says where a Docker host's ports are reached (see agent.Connector).
	Addresses func(ctx context.Context, host string) string
	// Locate, when set, says where a project's workspace is reached (see agent.Connector).
	Locate func(ctx context.Context, projectID string) (string, error)
	// Now is the preview's clock (tests move it).
	Now func() time.Time

	signer signer
	proxy  *httputil.ReverseProxy
	// doceCookies are the names of doce's own cookies, taken off every request to a preview.
	doceCookies []string
}

// New makes the preview server. key signs tokens and cookies (see Key); doceCookies names
// doce's own cookies (a __Host- or __Secure- prefix is matched too), which no app sees.
func New(st *store.Store, previewBaseURL, doceBaseURL, workspaceHost string, key []byte, doceCookies ...string) (*Preview, error) {
	b, err := url.Parse(previewBaseURL)
	if err != nil || b.Host == "" {
		return nil, fmt.Errorf("preview: base URL %q is not a URL", previewBaseURL)
	}
	d, err := url.Parse(doceBaseURL)
	if err != nil || d.Host == "" {
		return nil, fmt.Errorf("preview: doce base URL %q is not a URL", doceBaseURL)
	}
	if len(key) < 32 {
		return nil, errors.New("preview: signing key is shorter than 32 bytes")
	}
	p := &Preview{Store: st, base: b, doceOrigin: d.Scheme + "://" + d.Host, workspaceHost: workspaceHost, signer: signer{key: key}, Now: time.Now, doceCookies: doceCookies}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		FlushInterval:  -1, // pass every write on at once: dev servers stream (SSE, chunked logs)
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   32,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// No proxy from the environment: the target is the workspace's loopback port.
			Proxy: nil,
		},
	}
	return p, nil
}

// Key returns the key preview tokens are signed with: 32 random bytes made once and
// kept in the database sealed by Vault Transit, so every web process and every restart uses
// the same key and nobody with only the database can forge a preview credential.
func Key(ctx context.Context, st *store.Store, tr *secrets.Transit) ([]byte, error) {
	const name = "preview"
	k, err := st.SigningKey(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		ct, _, encErr := tr.Encrypt(ctx, store.RandomToken(32), secrets.SigningKeyContext(name))
		if encErr != nil {
			return nil, encErr
		}
		if err := st.AddSigningKey(ctx, name, ct); err != nil {
			return nil, err
		}
		k, err = st.SigningKey(ctx, name) // another process may have stored its key first
	}
	if err != nil {
		return nil, err
	}
	return tr.Decrypt(ctx, k.Ciphertext, secrets.SigningKeyContext(name))
}

// URL is the preview origin of a project.
func (p *Preview) URL(projectID string) string {
	return p.base.Scheme + "://" + projectID + "." + p.base.Host
}

// FrameSource is the CSP source matching every project's preview origin,
// e.g. http://*.preview.localhost:8080.
func (p *Preview) FrameSource() string {
	src := p.base.Scheme + "://*." + p.base.Hostname()
	if port := p.base.Port(); port != "" {
		src += ":" + port
	}
	return src
}

// project finds which project's preview host names, if any. ok is false for hosts outside
// the preview domain; id is "" for the preview domain itself or a malformed label.
func (p *Preview) project(host string) (id string, ok bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	suffix := strings.ToLower(p.base.Hostname())
	if host == suffix {
		return "", true
	}
	label, found := strings.CutSuffix(host, "."+suffix)
	if !found {
		return "", false
	}
	if !validID(label) {
		return "", true
	}
	return label, true
}

// validID accepts the shape of project ids (UUIDs): lowercase hex and dashes, one DNS label.
func validID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') && r != '-' {
			return false
		}
	}
	return true
}

// Route sends requests for preview hosts to the preview and every other to next (doce): the
// preview never passes through doce's router, cookies or CSRF checks, and doce's pages are
// never served on a preview origin.
func (p *Preview) Route(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := p.project(r.Host); ok {
			p.serve(w, r, id)
			return
		}
		next.ServeHTTP(w, r)
	})
}

type previewTargetKey struct{}

func (p *Preview) serve(w http.ResponseWriter, r *http.Request, id string) {
	// Only doce's own pages may frame a preview (or one of its refusals).
	w.Header().Set("Content-Security-Policy", "frame-ancestors "+p.doceOrigin)
	if id == "" {
		p.page(w, http.StatusNotFound, "No such preview", "There is no project preview at this address.", "")
		return
	}
	if r.URL.Path == OpenPath {
		p.open(w, r, id)
		return
	}
	if !sameOriginOrNavigation(r, p.URL(id)) {
		p.page(w, http.StatusForbidden, "Refused", "This preview answers only its own pages, never another site's requests.", id)
		return
	}
	ck, err := r.Cookie(Cookie)
	if err != nil {
		p.page(w, http.StatusUnauthorized, "Open this preview from doce", "This preview is shown only to its project's owner, signed in to doce.", id)
		return
	}
	cl, err := p.signer.verify(ck.Value, kindCookie, id, p.Now())
	if err != nil {
		p.page(w, http.StatusUnauthorized, "Open this preview from doce", "Your preview sign-in has expired.", id)
		return
	}
	proj, err := p.Store.PreviewProject(r.Context(), id, cl.UserID, cl.SessionID)
	if errors.Is(err, store.ErrNotFound) {
		// Signed out of doce, the project deleted, or someone else's: all look alike.
		p.page(w, http.StatusNotFound, "No such preview", "This preview is shown only to its project's owner, signed in to doce.", id)
		return
	} else if err != nil {
		p.page(w, http.StatusServiceUnavailable, "Preview unavailable", "doce could not check who you are just now. Reload in a moment.", id)
		return
	}
	if proj.PreviewHostPort == 0 {
		p.notRunning(w)
		return
	}
	addr := p.workspaceHost
	if p.Locate != nil {
		if addr, err = p.Locate(r.Context(), proj.ID); err != nil {
			p.notRunning(w)
			return
		}
	} else if proj.Host != "" && p.Addresses != nil {
		if a := p.Addresses(r.Context(), proj.Host); a != "" {
			addr = a
		}
	}
	target := &url.URL{Scheme: "http", Host: net.JoinHostPort(addr, strconv.Itoa(proj.PreviewHostPort))}
	// Long responses and WebSockets outlive the server's ReadTimeout: net/http clears the read
	// deadline once a request's body is read and when a connection is hijacked (the test
	// streams past a short one).
	p.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), previewTargetKey{}, target)))
}

// sameOriginOrNavigation refuses what another site makes the browser send with the preview's
// cookie (which is SameSite=None, as it must be inside doce's frame): only the preview's own
// requests, or a plain navigation to it, pass. Clients without fetch metadata (not browsers)
// pass; they hold no browser's cookie.
func sameOriginOrNavigation(r *http.Request, origin string) bool {
	if r.Header.Get("Upgrade") != "" {
		if o := r.Header.Get("Origin"); o != "" && o != origin {
			return false
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return r.Header.Get("Sec-Fetch-Mode") == "navigate" && (r.Method == http.MethodGet || r.Method == http.MethodHead)
}

// open exchanges a one-time token for the preview origin's cookie.
func (p *Preview) open(w http.ResponseWriter, r *http.Request, id string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in this page's address
	now := p.Now()
	cl, err := p.signer.verify(r.URL.Query().Get("token"), kindOpen, id, now)
	if err != nil {
		p.page(w, http.StatusUnauthorized, "Open this preview from doce", "This preview link has expired or is not valid.", id)
		return
	}
	if err := p.Store.UsePreviewToken(r.Context(), cl.ID, time.Unix(cl.Expires, 0)); errors.Is(err, store.ErrTokenUsed) {
		p.page(w, http.StatusUnauthorized, "Open this preview from doce", "This preview link was used already; each works once.", id)
		return
	} else if err != nil {
		p.page(w, http.StatusServiceUnavailable, "Preview unavailable", "doce could not check the link just now. Open the preview again in a moment.", id)
		return
	}
	if _, err := p.Store.PreviewProject(r.Context(), id, cl.UserID, cl.SessionID); err != nil {
		p.page(w, http.StatusNotFound, "No such preview", "This preview is shown only to its project's owner, signed in to doce.", id)
		return
	}
	exp := now.Add(previewCookieTTL)
	value := p.signer.sign(claims{Kind: kindCookie, ProjectID: id, UserID: cl.UserID, SessionID: cl.SessionID, ID: store.NewID(), Expires: exp.Unix()})
	http.SetCookie(w, &http.Cookie{
		Name: Cookie, Value: value, Path: "/", Expires: exp, HttpOnly: true,
		// Inside doce's frame the preview is a third party: SameSite=None lets the cookie go
		// along (sameOriginOrNavigation does what Lax would), and Partitioned keeps it to
		// frames under doce's site where browsers block third-party cookies.
		Secure: true, SameSite: http.SameSiteNoneMode, Partitioned: true,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// rewrite aims a request at the project's preview port and takes doce's credentials off it:
// the app in the workspace sees neither doce's session nor the preview cookie.
func (p *Preview) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(pr.In.Context().Value(previewTargetKey{}).(*url.URL))
	pr.SetXForwarded()
	pr.Out.Header.Del("Cookie")
	var kept []string
	for _, c := range pr.In.Cookies() {
		if c.Name != Cookie && !p.doceCookie(c.Name) {
			kept = append(kept, c.Name+"="+c.Value)
		}
	}
	if len(kept) > 0 {
		pr.Out.Header.Set("Cookie", strings.Join(kept, "; "))
	}
}

func (p *Preview) doceCookie(name string) bool {
	for _, n := range p.doceCookies {
		if strings.HasSuffix(name, n) {
			return true
		}
	}
	return false
}

// OpenURL is where the owner's browser goes to open a project's preview: the preview origin,
// with a one-time token for the doce session sessionID of userID.
func (p *Preview) OpenURL(projectID, userID, sessionID string) string {
	t := p.signer.sign(claims{Kind: kindOpen, ProjectID: projectID, UserID: userID, SessionID: sessionID, ID: store.NewID(),
		Expires: p.Now().Add(TokenTTL).Unix()})
	return p.URL(projectID) + OpenPath + "?token=" + url.QueryEscape(t)
}

// modifyResponse keeps the app from framing rules other than doce's and from replacing the
// preview cookie.
func (p *Preview) modifyResponse(resp *http.Response) error {
	resp.Header.Add("Content-Security-Policy", "frame-ancestors "+p.doceOrigin)
	if cs := resp.Header.Values("Set-Cookie"); len(cs) > 0 {
		resp.Header.Del("Set-Cookie")
		for _, c := range cs {
			if !strings.HasPrefix(strings.TrimSpace(c), Cookie+"=") {
				resp.Header.Add("Set-Cookie", c)
			}
		}
	}
	return nil
}

// proxyError answers when the workspace does not: nothing listens on the preview port (Docker
// accepts the connection and drops it), or the workspace is stopped.
func (p *Preview) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the browser went away
	}
	p.notRunning(w)
}

func (p *Preview) notRunning(w http.ResponseWriter) {
	// The proxy set the app's headers on w before failing; none of them apply to this page.
	for k := range w.Header() {
		if k != "Content-Security-Policy" {
			w.Header().Del(k)
		}
	}
	p.page(w, http.StatusBadGateway, "The app is not running",
		fmt.Sprintf("The app is not running; ask the agent to start it (listening on 0.0.0.0:%d in the workspace).", workspace.AppPort), "")
}

var previewPage = template.Must(template.New("preview").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · doce preview</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222}</style>
</head><body>
<h1>{{.Title}}</h1>
<p id="preview-message">{{.Message}}</p>
{{with .ProjectURL}}<p>Open it from <a href="{{.}}" target="_top">the project's page in doce</a>: its Preview section signs you in to the preview.</p>{{end}}
</body></html>
`))

// page answers with one of the preview's own pages: no script, no doce session, never cached.
func (p *Preview) page(w http.ResponseWriter, status int, title, message, projectID string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors "+p.doceOrigin)
	data := map[string]string{"Title": title, "Message": message}
	if projectID != "" {
		data["ProjectURL"] = p.doceOrigin + "/projects/" + projectID
	}
	w.WriteHeader(status)
	_ = previewPage.Execute(w, data)
}

// claims are what a preview token or cookie says: which owner, under which doce session, may
// see which project's preview, until when. Kind keeps a cookie from serving as a token and
// the reverse.
type claims struct {
	Kind      string `json:"k"`
	ProjectID string `json:"p"`
	UserID    string `json:"u"`
	SessionID string `json:"s"`
	ID        string `json:"j"` // what makes a token one-time
	Expires   int64  `json:"e"` // Unix seconds
}

// signer signs claims with HMAC-SHA256: base64url(JSON) "." base64url(MAC).
type signer struct{ key []byte }

var errBadToken = errors.New("preview: token refused")

func (s signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

func (s signer) sign(c claims) string {
	b, _ := json.Marshal(c) // a struct of strings and an int always marshals
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(s.mac(payload))
}

// verify checks the signature, the kind, the project and the expiry.
func (s signer) verify(token, kind, projectID string, now time.Time) (claims, error) {
	payload, sig, ok := strings.Cut(token, ".")
	if !ok {
		return claims{}, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(payload)) {
		return claims{}, errBadToken
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return claims{}, errBadToken
	}
	var c claims
	if err := json.Unmarshal(b, &c); err != nil {
		return claims{}, errBadToken
	}
	if c.Kind != kind || c.ProjectID != projectID || c.UserID == "" || c.SessionID == "" || c.ID == "" || !now.Before(time.Unix(c.Expires, 0)) {
		return claims{}, errBadToken
	}
	return c, nil
}
