package config

import (
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/egress"
)

func TestLoadDefaults(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DBPath != "data/doce.db" || c.WorkspaceMemory != 1<<30 || c.WorkspacePids != 1024 ||
		c.WorkspaceIdle != 30*time.Minute || c.SecureCookies() || c.HostName != "local" || c.HostMaxWorkspaces != 0 ||
		c.HostMemory != 0 || c.HostHeartbeat != 10*time.Second || c.WorkspaceBackend != "docker" ||
		c.KubeNamespace != "doce-workspaces" || c.KubeDoceNS != "doce" || c.KubeStorageBytes != 10<<30 {
		t.Errorf("defaults: %+v", c)
	}
	if c.EgressMode != "open" || c.EgressProxyPort != 3128 || c.WorkspaceFirewall != "iptables" || c.WorkspaceNanoCPUs != 2e9 ||
		c.QuotaProjects != 50 || c.QuotaRunning != 5 || c.QuotaCreatePerHour != 20 {
		t.Errorf("egress and quota defaults: %+v", c)
	}
	// The LLM gateway is the one endpoint served to workspaces by default.
	if len(c.WorkspaceServed) != 1 || c.WorkspaceServed[0].Host != "host.docker.internal" || c.WorkspaceServed[0].Port != 8081 {
		t.Errorf("served endpoints by default: %+v, want the gateway, host.docker.internal:8081", c.WorkspaceServed)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	env := map[string]string{
		"DOCE_HTTP_ADDR":               "nope",
		"DOCE_SESSION_TTL":             "soon",
		"VAULT_ADDR":                   "ftp://x",
		"DOCE_WORKSPACE_MEMORY":        "10m",
		"DOCE_WORKSPACE_PIDS":          "12",
		"DOCE_LOG_FORMAT":              "xml",
		"DOCE_WORKSPACE_DNS":           "1.1.1.1,resolver",
		"DOCE_OAUTH_URLS":              "github-copilot=ftp://ghe",
		"DOCE_OAUTH_CLIENT_IDS":        "nope=abc",
		"DOCE_OAUTH_SCOPES":            "openai",
		"DOCE_WORKSPACE_IDLE":          "500ms",
		"DOCE_ALLOWED_PRIVATE_HOSTS":   "10.0.0.0/99,llm.lan",
		"DOCE_HOST_GATEWAY":            "docker0",
		"DOCE_TRUSTED_PROXIES":         "proxy.lan",
		"DOCE_PREVIEW_BASE_URL":        "https://10.0.0.1",
		"DOCE_WORKSPACE_POOL":          "-1",
		"DOCE_WORKSPACE_POOL_MAX_AGE":  "1s",
		"DOCE_DATABASE_URL":            "mysql://u:pw@db/doce",
		"DOCE_DATABASE_MAX_CONNS":      "0",
		"DOCE_HOST_NAME":               "Host_1",
		"DOCE_HOST_MAX_WORKSPACES":     "many",
		"DOCE_HOST_MEMORY":             "lots",
		"DOCE_HOST_HEARTBEAT":          "10ms",
		"DOCE_WORKSPACE_SERVED":        "llm.lan:8080",
		"DOCE_EGRESS_PROXY_PORT":       "0",
		"DOCE_WORKSPACE_EGRESS":        "wide-open",
		"DOCE_WORKSPACE_EGRESS_ALLOW":  "https://registry.npmjs.org",
		"DOCE_WORKSPACE_PRIVATE_HOSTS": "10.0.0.0/99",
		"DOCE_WORKSPACE_CLIENTS":       "web.lan",
		"DOCE_WORKSPACE_FIREWALL":      "nftables",
		"DOCE_WORKSPACE_CPUS":          "0.01",
		"DOCE_QUOTA_PROJECTS":          "-1",
		"DOCE_QUOTA_RUNNING":           "some",
		"DOCE_QUOTA_CREATE_PER_HOUR":   "1.5",
		"DOCE_GATEWAY_ADDR":            "host-gateway:0",
		"DOCE_GATEWAY_URL":             "gateway",
		"DOCE_WORKSPACE_BACKEND":       "podman",
		"DOCE_KUBE_NAMESPACE":          "Doce_NS",
		"DOCE_KUBE_DOCE_NAMESPACE":     "-doce",
		"DOCE_KUBE_STORAGE_SIZE":       "big",
	}
	_, err := load(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("want an error")
	}
	for k := range env {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s: %v", k, err)
		}
	}
}

func TestSecureCookiesFollowBaseURL(t *testing.T) {
	c, err := load(func(k string) string {
		if k == "DOCE_BASE_URL" {
			return "https://doce.example.com"
		}
		return ""
	})
	if err != nil || !c.SecureCookies() {
		t.Fatalf("https base URL: secure=%v err=%v", c != nil && c.SecureCookies(), err)
	}
}

func TestDatabaseURLWinsAndNeverShowsItsPassword(t *testing.T) {
	env := map[string]string{"DOCE_DATABASE_URL": "postgres://doce:s3cret-pw@db:5432/doce?sslmode=disable", "DOCE_DATABASE_MAX_CONNS": "25"}
	c, err := load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.Database() != env["DOCE_DATABASE_URL"] || c.DatabaseMaxConns != 25 {
		t.Errorf("database %q, max conns %d", c.Database(), c.DatabaseMaxConns)
	}
	if strings.Contains(c.String(), "s3cret-pw") || !strings.Contains(c.String(), "db:5432/doce") {
		t.Errorf("start-up line: %s", c.String())
	}
	env["DOCE_DATABASE_URL"] = "postgres://doce:s3cret-pw@[bad"
	if _, err := load(func(k string) string { return env[k] }); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("a bad URL: %v", err)
	}
	c, _ = load(func(string) string { return "" })
	if c.Database() != "data/doce.db" {
		t.Errorf("unset URL: %q, want the SQLite file", c.Database())
	}
}

func TestPreviewBaseURL(t *testing.T) {
	for _, tc := range []struct {
		base, preview, want string
		bad                 bool
	}{
		{base: "", want: "http://preview.localhost:8080"}, // DOCE_HTTP_ADDR's default
		{base: "http://127.0.0.1:9000", want: "http://preview.localhost:9000"},
		// Under doce's host, or its registrable domain: a preview could set cookies doce gets.
		{base: "http://localhost:9000", want: ""}, // no default under doce's own host
		{base: "http://localhost:9000", preview: "http://preview.localhost:9000", bad: true},
		{base: "https://doce.example.com", preview: "https://preview.doce.example.com", bad: true},
		{base: "https://doce.example.com", preview: "https://preview.example.com", bad: true},
		{base: "https://doce.example.co.uk", preview: "https://preview.example.co.uk", bad: true},
		{base: "https://doce.example.co.uk", preview: "https://preview.other.co.uk", want: "https://preview.other.co.uk"},
		{base: "https://doce.example.com", preview: "https://example-preview.com", want: "https://example-preview.com"},
		{base: "https://doce.example.com", want: ""}, // no default off loopback: previews off
		{base: "https://doce.example.com", preview: "https://preview.example.net/", want: "https://preview.example.net"},
		{base: "https://doce.example.com", preview: "https://doce.example.com", bad: true},
		{base: "https://doce.example.com", preview: "https://example.com", bad: true},
		{base: "https://a.example.com", preview: "https://example.com", bad: true},
		{base: "https://doce.example.com", preview: "https://preview.example.net/path", bad: true},
		{base: "https://doce.example.com", preview: "ftp://preview.example.net", bad: true},
	} {
		env := map[string]string{"DOCE_BASE_URL": tc.base, "DOCE_PREVIEW_BASE_URL": tc.preview}
		c, err := load(func(k string) string { return env[k] })
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "DOCE_PREVIEW_BASE_URL") {
				t.Errorf("%s with preview %s: want an error naming DOCE_PREVIEW_BASE_URL, got %v", tc.base, tc.preview, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s with preview %q: %v", tc.base, tc.preview, err)
		} else if c.PreviewBaseURL != tc.want {
			t.Errorf("%s with preview %q: got %q, want %q", tc.base, tc.preview, c.PreviewBaseURL, tc.want)
		}
	}
}

// The default image is the alias the image script moves to every build: the scripts own the
// name, this test keeps the copy here in step.
func TestDefaultImageIsTheScriptsAlias(t *testing.T) {
	out, err := exec.Command("bash", "-c", `source ../scripts/lib.sh && echo "$WORKSPACE_IMAGE_ALIAS"`).Output()
	if err != nil {
		t.Fatalf("source scripts/lib.sh: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != DefaultOpenCodeImage {
		t.Fatalf("scripts/lib.sh names the alias %q, config's default is %q", got, DefaultOpenCodeImage)
	}
}

func TestWorkspaceIdle(t *testing.T) {
	for v, want := range map[string]time.Duration{"3s": 3 * time.Second, "2h": 2 * time.Hour} {
		c, err := load(func(k string) string {
			if k == "DOCE_WORKSPACE_IDLE" {
				return v
			}
			return ""
		})
		if err != nil || c.WorkspaceIdle != want {
			t.Errorf("DOCE_WORKSPACE_IDLE=%s: %v %v, want %v", v, c, err, want)
		}
	}
	_, err := load(func(k string) string {
		if k == "DOCE_WORKSPACE_IDLE" {
			return "soon"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), `DOCE_WORKSPACE_IDLE="soon" is not a duration of at least 1s`) {
		t.Errorf("DOCE_WORKSPACE_IDLE=soon: %v", err)
	}
}

// TestOutboundPolicy: by default no private address is allowed; DOCE_ALLOWED_PRIVATE_HOSTS and the
// hosts of DOCE_PROVIDER_BASE_URLS are.
func TestOutboundPolicy(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Outbound.Allows(netip.MustParseAddr("127.0.0.1")) || c.Outbound.Allows(netip.MustParseAddr("169.254.169.254")) || c.HostGateway.IsValid() || len(c.TrustedProxies) != 0 {
		t.Fatalf("default policy allows private addresses or has a gateway: %+v", c)
	}
	env := map[string]string{
		"DOCE_ALLOWED_PRIVATE_HOSTS": "192.168.10.0/24, 172.17.0.1",
		"DOCE_PROVIDER_BASE_URLS":    "openai=http://10.1.2.3:8000/v1",
		"DOCE_HOST_GATEWAY":          "172.17.0.1",
		"DOCE_TRUSTED_PROXIES":       "10.0.0.0/8,127.0.0.1",
	}
	c, err = load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"192.168.10.7": true, "172.17.0.1": true, "10.1.2.3": true, "10.1.2.4": false, "127.0.0.1": false} {
		if got := c.Outbound.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	if c.HostGateway != netip.MustParseAddr("172.17.0.1") || len(c.TrustedProxies) != 2 {
		t.Errorf("gateway %v, proxies %v", c.HostGateway, c.TrustedProxies)
	}
}

func TestHostSettings(t *testing.T) {
	env := map[string]string{"DOCE_HOST_NAME": "dock-2", "DOCE_HOST_MAX_WORKSPACES": "40", "DOCE_HOST_MEMORY": "64g", "DOCE_HOST_HEARTBEAT": "2s"}
	c, err := load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if c.HostName != "dock-2" || c.HostMaxWorkspaces != 40 || c.HostMemory != 64<<30 || c.HostHeartbeat != 2*time.Second {
		t.Errorf("host settings: %+v", c)
	}
}

func TestGatewayAddress(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.GatewayURL != "http://host.docker.internal:8081" {
		t.Errorf("default gateway URL %q", c.GatewayURL)
	}
	if _, err := c.GatewayListenAddr(netip.Addr{}); err == nil || !strings.Contains(err.Error(), "DOCE_HOST_GATEWAY") {
		t.Errorf("host-gateway unknown: %v, want an error naming DOCE_HOST_GATEWAY", err)
	}
	if a, err := c.GatewayListenAddr(netip.MustParseAddr("172.17.0.1")); err != nil || a != "172.17.0.1:8081" {
		t.Errorf("listen address %q, %v", a, err)
	}
	env := map[string]string{"DOCE_GATEWAY_ADDR": "10.0.0.5:9000", "DOCE_GATEWAY_URL": "https://gw.internal/"}
	c, err = load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.GatewayListenAddr(netip.Addr{}); a != "10.0.0.5:9000" || c.GatewayURL != "https://gw.internal" {
		t.Errorf("given: listen %q, URL %q", a, c.GatewayURL)
	}
	// Served to workspaces where it listens, since they reach it by a name of the operator's.
	if !slices.Contains(c.WorkspaceServed, egress.Endpoint{Host: "10.0.0.5", Port: 9000}) {
		t.Errorf("served %+v, want the listen address", c.WorkspaceServed)
	}
	// Listening on an address, reached as host.docker.internal: served by that name, so that
	// workspaces reach it without the egress proxy and nothing else on the address skips it.
	env = map[string]string{"DOCE_GATEWAY_ADDR": "10.0.0.5:9000"}
	if c, err = load(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if want := (egress.Endpoint{Host: "host.docker.internal", Port: 9000}); !slices.Contains(c.WorkspaceServed, want) || len(c.WorkspaceServed) != 1 {
		t.Errorf("served %+v, want only %+v", c.WorkspaceServed, want)
	}
}
