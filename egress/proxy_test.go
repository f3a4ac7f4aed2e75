package egress

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/doce-dev/doce/outbound"
)

func TestProxy(t *testing.T) {
	// The target is on 127.0.0.2, the one private address the operator allowed here.
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "target") }))
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 here: %v", err)
	}
	target.Listener.Close()
	target.Listener = ln
	target.Start()
	defer target.Close()
	targetAddr := netip.MustParseAddrPort(strings.TrimPrefix(target.URL, "http://"))
	rule := Rule{Mode: Open}
	workspaces := map[netip.Prefix]string{netip.MustParsePrefix("127.0.0.0/8"): "p1"}
	private, _ := outbound.Parse("127.0.0.2")
	p := &Proxy{
		Networks: func(context.Context) (map[netip.Prefix]string, error) { return workspaces, nil },
		Rule: func(_ context.Context, id string) (Rule, bool, error) {
			return rule, id == "p1", nil
		},
		Dial: private,
		Log:  slog.New(slog.DiscardHandler),
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	proxyURL, _ := url.Parse(srv.URL)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), DisableKeepAlives: true}}
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := client.Get(u)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tunnel := func(host string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodConnect, srv.URL, nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if code, body := get(target.URL); code != http.StatusOK || body != "target" {
		t.Errorf("open, allowed private address: %d %q", code, body)
	}
	if code := tunnel(targetAddr.String()); code != http.StatusOK {
		t.Errorf("open, CONNECT to the allowed private address: %d", code)
	}
	// A name that leads to a private address the operator did not allow (localhost is
	// 127.0.0.1): refused after the proxy's own lookup, whatever the name.
	if code, body := get(fmt.Sprintf("http://localhost:%d/", targetAddr.Port())); code != http.StatusForbidden {
		t.Errorf("open, a name for loopback: %d %q, want 403", code, body)
	}
	if code, _ := get("http://169.254.169.254/latest/meta-data/"); code != http.StatusForbidden {
		t.Errorf("open, metadata: %d, want 403", code)
	}
	rule = Rule{Mode: AllowList, Allow: []string{"registry.example"}}
	if code, _ := get(target.URL); code != http.StatusForbidden {
		t.Errorf("allow-list, an address not listed: %d, want 403", code)
	}
	rule.Allow = append(rule.Allow, "127.0.0.2")
	if code, _ := get(target.URL); code != http.StatusOK {
		t.Errorf("allow-list, the listed address: %d, want 200", code)
	}
	rule = Rule{Mode: Off, Allow: rule.Allow}
	if code, _ := get(target.URL); code != http.StatusForbidden {
		t.Errorf("off: %d, want 403", code)
	}
	if code := tunnel(targetAddr.String()); code != http.StatusForbidden {
		t.Errorf("off, CONNECT: %d, want 403", code)
	}
	// Served endpoints pass in any mode, for clients that ignore NO_PROXY.
	p.Served = []netip.AddrPort{targetAddr}
	if code, _ := get(target.URL); code != http.StatusOK {
		t.Errorf("off, a served endpoint: %d, want 200", code)
	}
	p.Gateway = targetAddr.Addr()
	if code, _ := get(fmt.Sprintf("http://host.docker.internal:%d/", targetAddr.Port())); code != http.StatusOK {
		t.Errorf("off, a served endpoint by the name host.docker.internal: %d, want 200", code)
	}
	p.Served = nil
	// An address that is no workspace's (a container on another network, the host): nothing.
	rule = Rule{Mode: Open}
	workspaces = map[netip.Prefix]string{netip.MustParsePrefix("10.213.0.0/24"): "p1"}
	p.nets = nil
	if code, _ := get(target.URL); code != http.StatusForbidden {
		t.Errorf("from no workspace: %d, want 403", code)
	}
}
