package web

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// securityHeaders sets the headers every answer on doce's origin carries: pages, the API,
// static files and refusals alike.
//
// The Content-Security-Policy allows scripts, styles, fetches and frames from doce's own origin
// only (the templates hold no inline script, handler, style attribute or javascript: URL; the
// scripts and the style sheet are files under /static). Previews are the one exception: the
// project page frames them from their own origin. frame-ancestors 'none' (and X-Frame-Options
// for browsers that predate it) keeps every doce page out of other sites' frames, so none can
// be clickjacked.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	frames := "'self'"
	if s.Preview != nil {
		frames += " " + s.Preview.FrameSource()
	}
	policy := func(styles string) string {
		return strings.Join([]string{
			"default-src 'none'",
			"script-src 'self'",
			styles,
			"img-src 'self' data:",
			"connect-src 'self'",
			"frame-src " + frames,
			"form-action 'self'",
			"base-uri 'none'",
			"frame-ancestors 'none'",
		}, "; ")
	}
	csp := policy("style-src 'self'")
	// The project page's terminal emulator (xterm.js) sizes and colours its rows with <style>
	// elements and style attributes it writes at run time, whose text no hash can name in
	// advance. Only those pages allow inline styles; scripts stay as strict as elsewhere, and
	// html/template leaves no way to inject markup of one's own.
	projectCSP := policy("style-src 'self' 'unsafe-inline'")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if strings.HasPrefix(r.URL.Path, "/projects/") {
			h.Set("Content-Security-Policy", projectCSP)
		} else {
			h.Set("Content-Security-Policy", csp)
		}
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if s.SecureCookies {
			// Only over https (SecureCookies follows DOCE_BASE_URL): a browser ignores it on http,
			// and on http://localhost it would pin a development port to https. No includeSubDomains:
			// doce does not own its host's siblings.
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// allowHosts refuses requests whose Host is not doce's own (DOCE_BASE_URL's): a page of another
// site whose name was made to resolve to doce's address (DNS rebinding) reaches doce with its
// own name as Host, and must not get to /setup on a fresh install, or anywhere else. The health
// probes answer any Host: they say nothing, and load balancers and healthchecks reach them by
// address.
func (s *Server) allowHosts(next http.Handler) http.Handler {
	want := s.host()
	if want == "" { // no DOCE_BASE_URL (tests of the router alone)
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || sameHost(r.Host, want) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMisdirectedRequest)
		_, _ = w.Write([]byte("This doce answers only at " + s.BaseURL + " (the address its operator set in DOCE_BASE_URL).\n"))
	})
}

// host is DOCE_BASE_URL's host (with its port, when it names one).
func (s *Server) host() string {
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// sameHost compares a request's Host with doce's, ignoring case, a trailing dot and a default
// port written out.
func sameHost(got, want string) bool {
	norm := func(h string) string {
		h = strings.ToLower(h)
		host, port, err := net.SplitHostPort(h)
		if err != nil {
			host, port = h, ""
		}
		host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
		if port == "" || port == "80" || port == "443" {
			return host
		}
		return net.JoinHostPort(host, port)
	}
	return norm(got) == norm(want)
}
