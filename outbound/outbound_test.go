package outbound_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/outbound"
)

func TestPublic(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700:4700::1111": true,
		"127.0.0.1": false, "127.8.9.10": false, "::1": false, "10.1.2.3": false, "172.17.0.1": false,
		"192.168.1.1": false, "169.254.169.254": false, "100.100.100.200": false, "0.0.0.0": false,
		"::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "fd00:ec2::254": false, "fe80::1": false,
		"64:ff9b::a00:1": false, "224.0.0.1": false, "255.255.255.255": false, "198.18.0.1": false,
		"2002:7f00:1::": false, "::": false,
	} {
		if got := outbound.Public(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Public(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	p, err := outbound.Parse(" 10.0.0.0/8, 192.168.1.20,llm.lan ,[::1]")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.9.9.9": true, "192.168.1.20": true, "192.168.1.21": false, "::1": true, "127.0.0.1": false, "8.8.8.8": true} {
		if got := p.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "http://x", "a b", "-x.lan"} {
		if _, err := outbound.Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// TestClient: a loopback server is refused, by address and by a name resolving to it (checked
// after DNS), and through a redirect from an allowed server; allowing it lets it through; and
// host.docker.internal stands for the host gateway.
func TestClient(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("inside")) }))
	defer target.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(target.URL, "http://"))

	strict := (&outbound.Policy{}).Client(5 * time.Second)
	for _, u := range []string{target.URL, "http://localhost:" + port} {
		_, err := strict.Get(u)
		if !outbound.Refused(err) {
			t.Errorf("GET %s: %v, want refused", u, err)
		}
	}

	// A redirect from an allowed address to a refused one is refused at the hop. The redirector
	// is allowed by name only, so the loopback address behind the redirect is still refused.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer redirector.Close()
	_, rport, _ := net.SplitHostPort(strings.TrimPrefix(redirector.URL, "http://"))
	byName, _ := outbound.Parse("localhost")
	resp, err := byName.Client(5 * time.Second).Get("http://localhost:" + rport)
	if !outbound.Refused(err) {
		t.Errorf("redirect to loopback: %v %v, want refused", resp, err)
	}

	allowed, _ := outbound.Parse("127.0.0.1")
	resp, err = allowed.Client(5 * time.Second).Get(target.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed loopback: %v %v", resp, err)
	}
	resp.Body.Close()

	// host.docker.internal: dialled at the gateway address, under the policy of that address
	// (or of the name, when the name is what the operator allowed).
	gw := &outbound.Policy{HostGateway: netip.MustParseAddr("127.0.0.1")}
	if _, err := gw.Client(5 * time.Second).Get("http://host.docker.internal:" + port); !outbound.Refused(err) {
		t.Errorf("host.docker.internal to a refused gateway: %v", err)
	}
	named, _ := outbound.Parse("host.docker.internal")
	named.HostGateway = netip.MustParseAddr("127.0.0.1")
	resp, err = named.Client(5 * time.Second).Get("http://host.docker.internal:" + port)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("allowed host.docker.internal: %v %v", resp, err)
	}
	resp.Body.Close()
}

// TestPin: the address handed to a program that dials by itself passes the same policy.
func TestPin(t *testing.T) {
	strict := &outbound.Policy{}
	allowLoopback, _ := outbound.Parse("127.0.0.1")
	allowName, _ := outbound.Parse("localhost")
	ctx := t.Context()
	for _, tc := range []struct {
		p    *outbound.Policy
		host string
		want string // "" refused
	}{
		{strict, "127.0.0.1", ""},
		{strict, "localhost", ""},
		{strict, "169.254.169.254", ""},
		{allowLoopback, "127.0.0.1", "127.0.0.1"},
		{allowLoopback, "[::ffff:127.0.0.1]", "127.0.0.1"},
		{allowName, "localhost", "127.0.0.1"},
	} {
		got, err := tc.p.Pin(ctx, tc.host)
		switch {
		case tc.want == "" && !outbound.Refused(err):
			t.Errorf("Pin(%s) = %s, %v; want refused", tc.host, got, err)
		case tc.want != "" && (err != nil || got.String() != tc.want && !(tc.host == "localhost" && got.IsLoopback())):
			t.Errorf("Pin(%s) = %s, %v; want %s", tc.host, got, err, tc.want)
		}
	}
}
