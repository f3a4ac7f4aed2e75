package config

import (
	"os/exec"
	"strings"
	"testing"
)

func TestLoadDefaults(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DBPath != "data/doce.db" || c.WorkspaceMemory != 1<<30 || c.WorkspacePids != 1024 || c.SecureCookies() {
		t.Errorf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	env := map[string]string{
		"DOCE_HTTP_ADDR":        "nope",
		"DOCE_SESSION_TTL":      "soon",
		"VAULT_ADDR":            "ftp://x",
		"DOCE_WORKSPACE_MEMORY": "10m",
		"DOCE_WORKSPACE_PIDS":   "12",
		"DOCE_LOG_FORMAT":       "xml",
		"DOCE_WORKSPACE_DNS":    "1.1.1.1,resolver",
		"DOCE_OAUTH_URLS":       "github-copilot=ftp://ghe",
		"DOCE_OAUTH_CLIENT_IDS": "nope=abc",
		"DOCE_OAUTH_SCOPES":     "openai",
		"DOCE_PREVIEW_BASE_URL": "https://10.0.0.1",
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

func TestPreviewBaseURL(t *testing.T) {
	for _, tc := range []struct {
		base, preview, want string
		bad                 bool
	}{
		{base: "", want: "http://preview.localhost:8080"}, // DOCE_HTTP_ADDR's default
		{base: "http://localhost:9000", want: "http://preview.localhost:9000"},
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
