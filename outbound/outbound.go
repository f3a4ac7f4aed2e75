// Package outbound is the one policy for requests doce's server makes to URLs users give (a
// custom provider's key check, an organisation's well-known document): addresses on doce's own
// machine and networks (loopback, private, link-local, cloud metadata and other special-purpose
// ranges) are refused unless the operator allows them. The check runs on the address actually
// dialled, after DNS, so a name that resolves to a public address first and a private one later
// (DNS rebinding) is refused too, and so is every redirect hop.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is the policy refusing an address; a caller tells the user only that it could not
// use the URL (RefusedMessage).
var ErrRefused = errors.New("outbound: the address is not allowed")

// RefusedMessage is all a user learns when the policy refuses an address: the same words for
// every address refused, so the answers map nothing of doce's own networks.
const RefusedMessage = "Could not use that URL. doce does not connect to addresses on its own machine or private networks unless its operator allows them (DOCE_ALLOWED_PRIVATE_HOSTS)."

// HostDockerInternal is the workspaces' name for the Docker host (Docker's host-gateway).
const HostDockerInternal = "host.docker.internal"

// Policy decides where server-side requests may go. The zero Policy refuses every
// special-purpose address.
type Policy struct {
	nets  []netip.Prefix
	hosts map[string]bool
	// HostGateway, when valid, is the address host.docker.internal stands for here: the Docker
	// bridge's gateway, which workspaces reach as host.docker.internal (host-gateway). doce's
	// server has no such name, so it dials this address instead, under the same policy.
	HostGateway netip.Addr
}

// Parse reads a comma-separated allow list (DOCE_ALLOWED_PRIVATE_HOSTS): IP addresses, CIDR
// ranges and host names. A listed host name may resolve to any address; a listed address or
// range may be reached under any name.
func Parse(list string) (*Policy, error) {
	p := &Policy{hosts: map[string]bool{}}
	var bad []string
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
		case strings.Contains(item, "/"):
			pfx, err := netip.ParsePrefix(item)
			if err != nil {
				bad = append(bad, item)
				continue
			}
			p.nets = append(p.nets, pfx.Masked())
		default:
			if a, err := netip.ParseAddr(strings.Trim(item, "[]")); err == nil {
				p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
				continue
			}
			if !validHostname(item) {
				bad = append(bad, item)
				continue
			}
			p.hosts[strings.ToLower(strings.TrimSuffix(item, "."))] = true
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%q: not IP addresses, CIDR ranges or host names", bad)
	}
	return p, nil
}

// AllowHost adds a host name or address to the allow list (the hosts of URLs the operator
// configured, such as DOCE_PROVIDER_BASE_URLS).
func (p *Policy) AllowHost(host string) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		p.nets = append(p.nets, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		return
	}
	if p.hosts == nil {
		p.hosts = map[string]bool{}
	}
	p.hosts[strings.ToLower(strings.TrimSuffix(host, "."))] = true
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// special are ranges that are not the public internet beyond what netip's predicates name
// (RFC 6890 and the IANA special-purpose registries).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT (and some clouds' metadata)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: reaches IPv4 addresses, private ones too
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: embeds any IPv4 address
}

// Public reports whether a is an ordinary internet address: not loopback, private (RFC 1918,
// fc00::/7), link-local (169.254.0.0/16, where cloud metadata lives, and fe80::/10), multicast,
// unspecified or another special-purpose range.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, p := range special {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// Allows reports whether the policy lets a request reach address a.
func (p *Policy) Allows(a netip.Addr) bool {
	a = a.Unmap()
	if Public(a) {
		return true
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

func (p *Policy) allowsHost(host string) bool {
	return p.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
}

// control runs after DNS, on the address about to be connected to.
func (p *Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefused, address)
	}
	if !p.Allows(ap.Addr()) {
		return ErrRefused
	}
	return nil
}

// DialContext dials addr under the policy.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if strings.EqualFold(host, HostDockerInternal) && p.HostGateway.IsValid() {
		if p.allowsHost(host) { // allowing the name allows the host it stands for
			return d.DialContext(ctx, network, net.JoinHostPort(p.HostGateway.String(), port))
		}
		addr = net.JoinHostPort(p.HostGateway.String(), port)
	} else if p.allowsHost(host) {
		return d.DialContext(ctx, network, addr)
	}
	d.Control = p.control
	return d.DialContext(ctx, network, addr)
}

// Pin resolves host and returns the address a connection to it may use under the policy, for
// a program doce runs that dials by itself (git): the caller makes it connect to that address
// alone, so a name that resolves elsewhere later is not followed.
func (p *Policy) Pin(ctx context.Context, host string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if !p.Allows(a) {
			return netip.Addr{}, ErrRefused
		}
		return a.Unmap(), nil
	}
	if strings.EqualFold(host, HostDockerInternal) && p.HostGateway.IsValid() {
		if !p.allowsHost(host) && !p.Allows(p.HostGateway) {
			return netip.Addr{}, ErrRefused
		}
		return p.HostGateway, nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("outbound: unable to resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if p.allowsHost(host) || p.Allows(a) {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, ErrRefused
}

// Client returns an HTTP client whose every connection, redirects included, passes the policy.
// It ignores HTTP_PROXY: a proxy would make the connection on doce's behalf, unchecked.
func (p *Policy) Client(timeout time.Duration) *http.Client {
	t := p.Transport()
	t.ResponseHeaderTimeout = 15 * time.Second
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("outbound: too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %s", ErrRefused, req.URL.Scheme)
			}
			return nil
		},
	}
}

// Transport returns a transport whose every connection passes the policy, for a caller that
// does not follow redirects (the LLM gateway's reverse proxy). It ignores HTTP_PROXY, as Client.
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         p.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        100,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// Refused reports whether err (from a request through Client) is the policy refusing an address.
func Refused(err error) bool { return errors.Is(err, ErrRefused) }
