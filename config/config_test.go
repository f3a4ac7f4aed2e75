package config

import (
	"strings"
	"testing"
)

func TestLoadDefaults(t *testing.T) {
	c, err := load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DBPath != "data/doce.db" || c.WorkspaceMemory != 1<<30 || c.SecureCookies() {
		t.Errorf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	env := map[string]string{
		"DOCE_HTTP_ADDR":              "nope",
		"DOCE_SESSION_TTL":            "soon",
		"VAULT_ADDR":                  "ftp://x",
		"DOCE_WORKSPACE_MEMORY":       "10m",
		"DOCE_LOG_FORMAT":             "xml",
		"DOCE_WORKSPACE_DNS":          "1.1.1.1,resolver",
		"DOCE_OAUTH_URLS":             "github-copilot=ftp://ghe",
		"DOCE_OAUTH_CLIENT_IDS":       "nope=abc",
		"DOCE_OAUTH_SCOPES":           "openai",
		"DOCE_WORKSPACE_POOL":         "-1",
		"DOCE_WORKSPACE_POOL_MAX_AGE": "1s",
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
