package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doce-dev/doce/outbound"
)

// Proxy is the HTTP proxy workspaces reach the internet through (CONNECT for HTTPS and any
// other TCP protocol a client tunnels, plain forwarding for http:// URLs). It knows a workspace
// by the address a connection comes from: every workspace has a network of its own, and one
// without capabilities cannot send from another address.
type Proxy struct {
	// Networks lists the workspace networks of this host's engine: subnet → workspace (project)
	// id.
	Networks func(ctx context.Context) (map[netip.Prefix]string, error)
	// Rule is the egress policy of a workspace; ok false for one no project owns (a prebuilt
	// workspace), which reaches nothing.
	Rule func(ctx context.Context, workspaceID string) (r Rule, ok bool, err error)
	// Dial reaches public addresses and the operator's private exceptions
	// (DOCE_WORKSPACE_PRIVATE_HOSTS), after its own DNS lookup.
	Dial *outbound.Policy
	// Served are the endpoints workspaces reach directly; the proxy takes them too, for clients
	// that ignore NO_PROXY. Gateway is the address host.docker.internal stands for.
	Served  []netip.AddrPort
	Gateway netip.Addr
	Log     *slog.Logger

	mu     sync.Mutex
	nets   map[netip.Prefix]string
	readAt time.Time
}

// networksMaxAge is how often a connection from an unknown address may make the proxy ask
// Docker again: a workspace made a moment ago is found, a flood is not passed on.
const networksMaxAge = time.Second

// workspace is the id of the workspace at addr; "" when addr is none.
func (p *Proxy) workspace(ctx context.Context, addr netip.Addr) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	find := func() string {
		for pfx, id := range p.nets {
			if pfx.Contains(addr) {
				return id
			}
		}
		return ""
	}
	if id := find(); id != "" || time.Since(p.readAt) < networksMaxAge {
		return id, nil
	}
	nets, err := p.Networks(ctx)
	if err != nil {
		return "", err
	}
	p.nets, p.readAt = nets, time.Now()
	return find(), nil
}

// ServeHTTP handles one proxied request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Host
	if r.Method != http.MethodConnect {
		if !r.URL.IsAbs() || r.URL.Scheme != "http" {
			http.Error(w, "doce egress proxy: give an absolute http:// URL, or CONNECT for https", http.StatusBadRequest)
			return
		}
		target = r.URL.Host
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil { // a plain http:// URL without a port
		host, port = strings.Trim(target, "[]"), "80"
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		http.Error(w, "doce egress proxy: no host:port to go to", http.StatusBadRequest)
		return
	}
	conn, status, why := p.dial(r.Context(), r.RemoteAddr, host, port)
	if conn == nil {
		p.Log.Info("egress refused", "from", r.RemoteAddr, "to", net.JoinHostPort(host, port), "why", why)
		http.Error(w, "doce egress proxy: "+why, status)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, conn)
		return
	}
	// The connection is dialled already, under the policy: the request goes over it, whatever
	// the URL's name resolves to by now.
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.Out.URL = pr.In.URL },
		Transport: &http.Transport{
			DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil },
			// One request, one connection: the next one is checked again.
			DisableKeepAlives:     true,
			ResponseHeaderTimeout: 5 * time.Minute,
		},
		ErrorLog: slog.NewLogLogger(p.Log.Handler(), slog.LevelDebug),
	}
	rp.ServeHTTP(w, r)
}

// dial connects to host:port for the workspace at from, or says why not (with the HTTP status).
func (p *Proxy) dial(ctx context.Context, from, host, port string) (net.Conn, int, string) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	src, err := netip.ParseAddrPort(from)
	if err != nil {
		return nil, http.StatusForbidden, "not a workspace"
	}
	d := net.Dialer{}
	a, err := netip.ParseAddr(host)
	if strings.EqualFold(host, HostDockerInternal) {
		a, err = p.Gateway, nil
	}
	if err == nil {
		n, _ := strconv.Atoi(port)
		for _, s := range p.Served {
			if s == netip.AddrPortFrom(a.Unmap(), uint16(n)) {
				c, err := d.DialContext(ctx, "tcp", s.String())
				if err != nil {
					return nil, http.StatusBadGateway, "unable to reach " + s.String()
				}
				return c, 0, ""
			}
		}
	}
	id, err := p.workspace(ctx, src.Addr().Unmap())
	if err != nil {
		p.Log.Warn("egress proxy: unable to list workspace networks", "error", err)
		return nil, http.StatusServiceUnavailable, "unable to tell which workspace this is; try again"
	} else if id == "" {
		return nil, http.StatusForbidden, "not a workspace"
	}
	rule, ok, err := p.Rule(ctx, id)
	if err != nil {
		p.Log.Warn("egress proxy: unable to read the project's egress policy", "workspace", id, "error", err)
		return nil, http.StatusServiceUnavailable, "unable to read this project's egress policy; try again"
	}
	if !ok {
		rule = Rule{Mode: Off}
	}
	if !rule.Permits(host) {
		return nil, http.StatusForbidden, fmt.Sprintf("%s is not allowed: this project's egress is %s", host, rule.Mode)
	}
	c, err := p.Dial.DialContext(ctx, "tcp", net.JoinHostPort(host, port))
	switch {
	case outbound.Refused(err):
		return nil, http.StatusForbidden, host + " leads to an address workspaces may not reach"
	case err != nil:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return nil, http.StatusBadGateway, "no such host " + host
		}
		return nil, http.StatusBadGateway, "unable to reach " + net.JoinHostPort(host, port)
	}
	return c, 0, ""
}

// tunnel joins the client to conn until either side closes.
func (p *Proxy) tunnel(w http.ResponseWriter, conn net.Conn) {
	rc := http.NewResponseController(w)
	client, buf, err := rc.Hijack()
	if err != nil {
		conn.Close()
		http.Error(w, "doce egress proxy: CONNECT needs HTTP/1.1", http.StatusBadRequest)
		return
	}
	defer client.Close()
	defer conn.Close()
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() {
		// What the client sent after its CONNECT, still buffered, goes first.
		_, _ = io.Copy(conn, io.MultiReader(io.LimitReader(buf, int64(buf.Reader.Buffered())), client))
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(client, conn)
		if tc, ok := client.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	<-done
}

// Serve runs the proxy on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(p.Log.Handler(), slog.LevelDebug)}
	go func() {
		<-ctx.Done()
		_ = srv.Close() // tunnels (hijacked connections) end with their peers or the process
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("egress: proxy: %w", err)
	}
	return nil
}
