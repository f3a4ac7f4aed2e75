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
		"DOCE_HTTP_ADDR":          "nope",
		"DOCE_SESSION_TTL":        "soon",
		"VAULT_ADDR":              "ftp://x",
		"DOCE_WORKSPACE_MEMORY":   "10m",
		"DOCE_LOG_FORMAT":         "xml",
		"DOCE_WORKSPACE_DNS":      "1.1.1.1,resolver",
		"DOCE_OAUTH_URLS":         "github-copilot=ftp://ghe",
		"DOCE_OAUTH_CLIENT_IDS":   "nope=abc",
		"DOCE_OAUTH_SCOPES":       "openai",
		"DOCE_DATABASE_URL":       "mysql://u:pw@db/doce",
		"DOCE_DATABASE_MAX_CONNS": "0",
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
