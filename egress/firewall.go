package egress

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-iptables/iptables"
)

// Chains doce owns in the filter table.
const (
	// ChainWorkspace sees every packet a workspace sends to the host or through it.
	ChainWorkspace = "DOCE-WORKSPACE"
	// ChainPublished sees every new connection to a workspace from outside its host (a
	// published port reached over the network).
	ChainPublished = "DOCE-PUBLISHED"
	// dockerUser is the chain Docker runs first in FORWARD and leaves to its users; a
	// restarted dockerd keeps its rules.
	dockerUser = "DOCKER-USER"
)

// Firewall keeps the host's rules for workspaces: they reach nothing but Served, and their
// published ports answer no other machine but Clients. Several doce installs (or a worker per
// Docker engine) may share one host's rules: each keeps its own allowances, marked with Tag,
// and leaves the others'.
type Firewall struct {
	// Tag names this install and host, e.g. the task queue and host name (Tag hashes them).
	Tag string
	// Served are the endpoints workspaces may reach: the egress proxy, an LLM gateway.
	Served []netip.AddrPort
	// Clients are the other machines that may reach published workspace ports (the web tier
	// of a multi-host install); the host itself always may.
	Clients []netip.Prefix
}

// Tag is a firewall tag for the given names, short enough for a rule comment.
func Tag(names ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	return hex.EncodeToString(sum[:6])
}

var (
	rejectTCP = []string{"-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"}
	rejectAny = []string{"-j", "REJECT", "--reject-with", "icmp-port-unreachable"}
	// Replies to connections doce made into a workspace, and the ICMP errors of allowed ones.
	established = []string{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"}
)

// Ensure puts the rules in place, idempotently; it changes only what is missing or stale, and
// never leaves a moment in which a workspace reaches more than it should.
//
// Every worker on a host keeps the same chains: one that changes them at the same moment can
// make a positional insert fail (iptables-nft: "RULE_INSERT failed (No such file or
// directory)"), so a failed pass is tried again, a few times, a moment later.
func (f *Firewall) Ensure() error {
	var err error
	for attempt := range ensureAttempts {
		if err = f.ensure(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 100 * time.Millisecond)
	}
	return err
}

const ensureAttempts = 5

func (f *Firewall) ensure() error {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv4)
	if err != nil {
		return fmt.Errorf("egress: iptables: %w", err)
	}
	mark := "doce:" + f.Tag
	var served, clients [][]string
	for _, s := range f.Served {
		if s.Addr().Is4() {
			served = append(served, []string{"-d", s.Addr().String() + "/32", "-p", "tcp", "-m", "tcp", "--dport", fmt.Sprint(s.Port()), "-m", "comment", "--comment", mark, "-j", "RETURN"})
		}
	}
	for _, c := range f.Clients {
		if c.Addr().Is4() {
			clients = append(clients, []string{"-s", c.Masked().String(), "-m", "comment", "--comment", mark, "-j", "RETURN"})
		}
	}
	if err := syncChain(ipt, ChainWorkspace, mark, established, served); err != nil {
		return err
	}
	if err := syncChain(ipt, ChainPublished, mark, nil, clients); err != nil {
		return err
	}
	forward := dockerUser
	if ok, err := ipt.ChainExists("filter", dockerUser); err != nil {
		return fmt.Errorf("egress: iptables: %w", err)
	} else if !ok { // dockerd runs without --iptables: FORWARD is the place
		forward = "FORWARD"
	}
	// The jumps come last, once the chains are whole, and first in their chain: Docker's own
	// rules accept a workspace's connections.
	for _, j := range []struct {
		chain string
		rule  []string
	}{
		{"INPUT", []string{"-i", InterfacePrefix + "+", "-j", ChainWorkspace}},
		{forward, []string{"-i", InterfacePrefix + "+", "-j", ChainWorkspace}},
		{forward, []string{"-o", InterfacePrefix + "+", "-m", "conntrack", "--ctstate", "NEW", "-j", ChainPublished}},
	} {
		if err := ipt.InsertUnique("filter", j.chain, 1, j.rule...); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
	}
	return ensureIPv6()
}

// syncChain makes chain: head, then every install's allowances (this one's exactly want, marked
// with mark), then the rejects. New allowances go in before old ones go out.
func syncChain(ipt *iptables.IPTables, chain, mark string, head []string, want [][]string) error {
	if ok, err := ipt.ChainExists("filter", chain); err != nil {
		return fmt.Errorf("egress: iptables: %w", err)
	} else if !ok {
		if err := ipt.NewChain("filter", chain); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
	}
	// Rejects first when missing (a new chain): from then on nothing passes by mistake.
	for _, r := range [][]string{rejectTCP, rejectAny} {
		if err := ipt.AppendUnique("filter", chain, r...); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
	}
	pos := 1
	if head != nil {
		if err := ipt.InsertUnique("filter", chain, 1, head...); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
		pos = 2
	}
	for _, r := range want {
		if err := ipt.InsertUnique("filter", chain, pos, r...); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
	}
	rules, err := ipt.List("filter", chain)
	if err != nil {
		return fmt.Errorf("egress: iptables: %w", err)
	}
	for _, line := range rules {
		// iptables-nft quotes every comment, iptables-legacy only those with spaces.
		spec, ok := strings.CutPrefix(strings.ReplaceAll(line, `"`, ""), "-A "+chain+" ")
		if !ok || !strings.Contains(spec, "--comment "+mark+" ") {
			continue
		}
		fields := strings.Fields(spec)
		if slices.ContainsFunc(want, func(w []string) bool { return slices.Equal(w, fields) }) {
			continue
		}
		if err := ipt.Delete("filter", chain, fields...); err != nil {
			return fmt.Errorf("egress: iptables: %w", err)
		}
	}
	return nil
}

// ensureIPv6 refuses every IPv6 packet from and to a workspace: their networks have no IPv6,
// and one an engine's defaults gave them would otherwise be a way around the rules above.
func ensureIPv6() error {
	ipt, err := iptables.NewWithProtocol(iptables.ProtocolIPv6)
	if err != nil {
		return nil //nolint:nilerr // no ip6tables: the host has no IPv6 to route
	}
	for _, rule := range [][]string{
		{"INPUT", "-i", InterfacePrefix + "+", "-j", "REJECT"},
		{"FORWARD", "-i", InterfacePrefix + "+", "-j", "REJECT"},
		{"FORWARD", "-o", InterfacePrefix + "+", "-j", "REJECT"},
	} {
		if err := ipt.InsertUnique("filter", rule[0], 1, rule[1:]...); err != nil {
			var e *iptables.Error
			if errors.As(err, &e) && e.ExitStatus() == 3 { // no IPv6 filter table in this kernel
				return nil
			}
			return fmt.Errorf("egress: ip6tables: %w", err)
		}
	}
	return nil
}
