// Package egress contains what a workspace may reach. A workspace runs code nobody reviewed, so
// two mechanisms work together:
//
//   - The host firewall (Firewall) stops every connection a workspace opens itself, to any
//     address, except the endpoints doce serves to workspaces (an LLM gateway, the egress
//     proxy). It matches the workspaces' bridge interfaces, whose names doce chooses
//     (BridgeName), so it needs no knowledge of address pools, and a name cannot fool it.
//   - The egress proxy (Proxy) is the workspaces' only way out: HTTP_PROXY and HTTPS_PROXY name
//     it. It resolves each name itself and dials only public addresses (so DNS rebinding finds
//     nothing to rebind to), under the project's Rule: open, allow-list or off, read from the
//     database at each connection, so a change applies to the next one.
//
// The firewall rules are static (the same for every project), so a restart of dockerd or doce
// loses nothing that the worker's next check (at start and every heartbeat) does not put back.
package egress

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// InterfacePrefix begins the name of every workspace network's bridge interface.
const InterfacePrefix = "doce"

// BridgeName is the bridge interface of the network named network: the prefix and a digest of
// the name, within Linux's 15 characters.
func BridgeName(network string) string {
	sum := sha256.Sum256([]byte(network))
	return InterfacePrefix + hex.EncodeToString(sum[:])[:15-len(InterfacePrefix)]
}

// Mode is how much of the internet a project's workspace reaches.
type Mode string

const (
	// Open: any public address (never a private, loopback, link-local or metadata one).
	Open Mode = "open"
	// AllowList: only the hosts the project's owner listed.
	AllowList Mode = "allow-list"
	// Off: nothing beyond what doce serves to workspaces.
	Off Mode = "off"
)

// ParseMode reads a mode as users and operators write it.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.TrimSpace(s)); m {
	case Open, AllowList, Off:
		return m, nil
	}
	return "", fmt.Errorf("%q is not open, allow-list or off", s)
}

// MaxAllowed bounds an allow list.
const MaxAllowed = 100

// Rule is a project's egress policy.
type Rule struct {
	Mode Mode
	// Allow lists, for AllowList, host names (registry.npmjs.org), whole domains (*.pypi.org,
	// which is pypi.org's subdomains) and IP addresses.
	Allow []string
}

// ParseAllowList reads a comma- or space-separated allow list, lower-cased and without
// duplicates; it names every entry that is not a host name, *.domain or IP address.
func ParseAllowList(s string) ([]string, error) {
	var list, bad []string
	for _, item := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		item = strings.ToLower(strings.TrimSuffix(item, "."))
		if _, err := netip.ParseAddr(item); err != nil && !validHost(strings.TrimPrefix(item, "*.")) {
			bad = append(bad, item)
			continue
		}
		if !slices.Contains(list, item) {
			list = append(list, item)
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%q: not host names, *.domains or IP addresses", bad)
	}
	if len(list) > MaxAllowed {
		return nil, fmt.Errorf("%d hosts: at most %d", len(list), MaxAllowed)
	}
	return list, nil
}

func validHost(h string) bool {
	if h == "" || len(h) > 253 || !strings.Contains(h, ".") && h != "localhost" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// Permits reports whether the rule lets a workspace ask for host (a name or an address, as the
// client gave it). Where the name leads is checked apart, when the proxy dials.
func (r Rule) Permits(host string) bool {
	switch r.Mode {
	case Open:
		return true
	case AllowList:
		host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
		for _, a := range r.Allow {
			if a == host || strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:]) {
				return true
			}
		}
	}
	return false
}

// ParseServed reads DOCE_WORKSPACE_SERVED: host:port entries, the host an IP address or
// host.docker.internal (the Docker host as workspaces name it).
func ParseServed(s string) ([]Endpoint, error) {
	var list []Endpoint
	var bad []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		host, port, err := net.SplitHostPort(item)
		var p uint64
		if err == nil {
			_, err = fmt.Sscanf(port, "%d", &p)
		}
		_, aerr := netip.ParseAddr(host)
		if err != nil || p < 1 || p > 65535 || aerr != nil && !strings.EqualFold(host, HostDockerInternal) {
			bad = append(bad, item)
			continue
		}
		list = append(list, Endpoint{Host: strings.ToLower(host), Port: uint16(p)})
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%q: not host:port with an IP address or %s", bad, HostDockerInternal)
	}
	return list, nil
}

// HostDockerInternal is the workspaces' name for the Docker host.
const HostDockerInternal = "host.docker.internal"

// Endpoint is a TCP endpoint doce serves to workspaces, as configured.
type Endpoint struct {
	Host string // an IP address or HostDockerInternal
	Port uint16
}

// Resolve is the endpoint's address, host.docker.internal standing for gateway.
func (e Endpoint) Resolve(gateway netip.Addr) (netip.AddrPort, error) {
	if e.Host == HostDockerInternal {
		if !gateway.IsValid() {
			return netip.AddrPort{}, fmt.Errorf("egress: no address for %s", HostDockerInternal)
		}
		return netip.AddrPortFrom(gateway, e.Port), nil
	}
	a, err := netip.ParseAddr(e.Host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a.Unmap(), e.Port), nil
}

func (e Endpoint) String() string { return net.JoinHostPort(e.Host, fmt.Sprint(e.Port)) }
