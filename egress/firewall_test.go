package egress

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// inNewNetns moves the test's thread (and the iptables it runs) into a network namespace of its
// own, so the host's rules are never touched. The thread stays locked and ends with the test.
func inNewNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	runtime.LockOSThread()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Skipf("no network namespace: %v", err)
	}
}

func rules(t *testing.T, chain string) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-S", chain).CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S %s: %v\n%s", chain, err, out)
	}
	// iptables-nft quotes every comment, iptables-legacy none of these.
	return strings.Split(strings.ReplaceAll(strings.TrimSpace(string(out)), `"`, ""), "\n")
}

func TestFirewallEnsure(t *testing.T) {
	inNewNetns(t)
	if err := exec.Command("iptables", "-N", dockerUser).Run(); err != nil {
		t.Fatal(err)
	}
	gw := netip.MustParseAddr("172.17.0.1")
	a := &Firewall{Tag: "a", Served: []netip.AddrPort{netip.AddrPortFrom(gw, 3128), netip.AddrPortFrom(gw, 8000)}}
	b := &Firewall{Tag: "b", Served: []netip.AddrPort{netip.AddrPortFrom(gw, 9000)}, Clients: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32")}}
	for _, f := range []*Firewall{a, b, a} { // twice: idempotent
		if err := f.Ensure(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"-N DOCE-WORKSPACE",
		"-A DOCE-WORKSPACE -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
		"-A DOCE-WORKSPACE -d 172.17.0.1/32 -p tcp -m tcp --dport 9000 -m comment --comment doce:b -j RETURN",
		"-A DOCE-WORKSPACE -d 172.17.0.1/32 -p tcp -m tcp --dport 8000 -m comment --comment doce:a -j RETURN",
		"-A DOCE-WORKSPACE -d 172.17.0.1/32 -p tcp -m tcp --dport 3128 -m comment --comment doce:a -j RETURN",
		"-A DOCE-WORKSPACE -p tcp -j REJECT --reject-with tcp-reset",
		"-A DOCE-WORKSPACE -j REJECT --reject-with icmp-port-unreachable",
	}
	if got := rules(t, ChainWorkspace); !slices.Equal(got, want) {
		t.Errorf("DOCE-WORKSPACE:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// a drops an endpoint: only its rule goes; b's stay.
	a.Served = a.Served[:1]
	if err := a.Ensure(); err != nil {
		t.Fatal(err)
	}
	want = slices.Delete(want, 3, 4)
	if got := rules(t, ChainWorkspace); !slices.Equal(got, want) {
		t.Errorf("after a dropped port 8000:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := rules(t, ChainPublished); !slices.Contains(got, "-A DOCE-PUBLISHED -s 10.1.2.3/32 -m comment --comment doce:b -j RETURN") || got[len(got)-1] != "-A DOCE-PUBLISHED -j REJECT --reject-with icmp-port-unreachable" {
		t.Errorf("DOCE-PUBLISHED:\n%s", strings.Join(rules(t, ChainPublished), "\n"))
	}
	for chain, jumps := range map[string][]string{
		"INPUT":    {"-A INPUT -i doce+ -j DOCE-WORKSPACE"},
		dockerUser: {"-A DOCKER-USER -o doce+ -m conntrack --ctstate NEW -j DOCE-PUBLISHED", "-A DOCKER-USER -i doce+ -j DOCE-WORKSPACE"},
	} {
		got := rules(t, chain)
		if !slices.Equal(got[1:], jumps) {
			t.Errorf("%s:\n%s\nwant the jumps\n%s", chain, strings.Join(got, "\n"), strings.Join(jumps, "\n"))
		}
	}
}

func TestBridgeName(t *testing.T) {
	n := BridgeName("doce-0123456789abcdef0123456789abcdef_default")
	if len(n) != 15 || !strings.HasPrefix(n, InterfacePrefix) || n == BridgeName("doce-other_default") {
		t.Errorf("BridgeName = %q", n)
	}
}

func TestRulePermits(t *testing.T) {
	allow, err := ParseAllowList("registry.npmjs.org, *.PyPI.org 10.0.0.5\nregistry.npmjs.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(allow) != 3 {
		t.Fatalf("allow list %q, want 3 entries", allow)
	}
	r := Rule{Mode: AllowList, Allow: allow}
	for host, want := range map[string]bool{
		"registry.npmjs.org": true, "REGISTRY.npmjs.org.": true, "files.pypi.org": true, "pypi.org": false,
		"evilpypi.org": false, "10.0.0.5": true, "npmjs.org": false, "registry.npmjs.org.evil.com": false,
	} {
		if got := r.Permits(host); got != want {
			t.Errorf("allow-list Permits(%q) = %v, want %v", host, got, want)
		}
	}
	if !(Rule{Mode: Open}).Permits("example.com") || (Rule{Mode: Off, Allow: allow}).Permits("registry.npmjs.org") {
		t.Error("open must permit any host and off none")
	}
	for _, bad := range []string{"http://x.org", "a b/c", "*", "-x.org", "x..org"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted", bad)
		}
	}
}

func TestParseServed(t *testing.T) {
	got, err := ParseServed(" host.docker.internal:8080, 10.0.0.2:443 ,[fd00::1]:80")
	if err != nil || len(got) != 3 || got[0].Host != HostDockerInternal || got[1].Port != 443 {
		t.Fatalf("ParseServed = %v, %v", got, err)
	}
	ap, err := got[0].Resolve(netip.MustParseAddr("172.17.0.1"))
	if err != nil || ap.String() != "172.17.0.1:8080" {
		t.Errorf("Resolve = %v, %v", ap, err)
	}
	for _, bad := range []string{"example.com:80", "10.0.0.1", "10.0.0.1:0", "10.0.0.1:70000"} {
		if _, err := ParseServed(bad); err == nil {
			t.Errorf("ParseServed(%q) accepted", bad)
		}
	}
}
