package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestPreviewDomainSharingCookiesRefused: doce will not start with a preview domain under its
// own host or its registrable domain, and says why; a domain of its own starts.
func TestPreviewDomainSharingCookiesRefused(t *testing.T) {
	bin := doceBinary(t)
	for _, tc := range []struct{ base, preview, want string }{
		{"https://doce.example.com", "https://preview.doce.example.com", "must not be under doce's host"},
		{"https://doce.example.com", "https://preview.example.com", "must not share doce's registrable domain (example.com)"},
		{"http://localhost:8080", "http://preview.localhost:8080", "must not be under doce's host"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, "serve")
		cmd.Env = append(os.Environ(), "DOCE_DATA_DIR="+t.TempDir(), "DOCE_BASE_URL="+tc.base, "DOCE_PREVIEW_BASE_URL="+tc.preview)
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "DOCE_PREVIEW_BASE_URL") || !strings.Contains(string(out), tc.want) {
			t.Errorf("doce at %s with previews at %s: %v\n%s", tc.base, tc.preview, err, out)
		}
	}
}

// TestDNSRebindingCannotClaimAFreshInstall: on a fresh doce, a request naming another host
// (a name rebound to doce's address) gets 421 at /setup and everywhere else, and makes no admin;
// doce's own address then sets up as ever.
func TestDNSRebindingCannotClaimAFreshInstall(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-rebind-%d", time.Now().UnixNano()))
	u, _ := url.Parse(doce.URL)
	_, port, _ := strings.Cut(u.Host, ":")
	send := func(host, method, path string, form url.Values) int {
		t.Helper()
		req, _ := http.NewRequest(method, doce.URL+path, strings.NewReader(form.Encode()))
		req.Host = host
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := newClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	claim := url.Values{"username": {"mallory"}, "password": {"correct horse battery"}}
	for _, host := range []string{"rebound.attacker.example:" + port, "localhost:" + port, "rebound.attacker.example"} {
		if code := send(host, "POST", "/setup", claim); code != http.StatusMisdirectedRequest {
			t.Errorf("POST /setup as %s: %d, want 421", host, code)
		}
		if code := send(host, "GET", "/setup", nil); code != http.StatusMisdirectedRequest {
			t.Errorf("GET /setup as %s: %d, want 421", host, code)
		}
	}
	st := openStoreAt(t, doce)
	defer st.Close()
	if n, err := st.CountUsers(context.Background()); err != nil || n != 0 {
		t.Fatalf("%d users after the rebound requests (%v), want 0", n, err)
	}
	if code := send(u.Host, "POST", "/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); code != http.StatusSeeOther {
		t.Fatalf("setup at doce's own address: %d", code)
	}
	if _, err := st.UserByUsername(context.Background(), "admin"); err != nil {
		t.Fatal(err)
	}
}
