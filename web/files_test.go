package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
)

func TestFilesAndExportAreTheOwnersOnly(t *testing.T) {
	e := newEnvWith(t, &agent.Connector{})
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	a, _ := e.store.UserByUsername(context.Background(), "alice")
	p := &store.Project{OwnerUserID: a.ID, Name: "Secret plan", Slug: "secret-plan", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
	if _, _, err := e.store.CreateProject(context.Background(), p, ""); err != nil {
		t.Fatal(err)
	}
	// Ready, as far as the database says; no workspace answers in these tests.
	if _, err := e.store.DB.NewUpdate().Model((*store.Project)(nil)).Set("status = ?", status.Ready).Where("id = ?", p.ID).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := e.srv.URL + "/api/v1/projects/" + p.ID
	for _, path := range []string{"/files?path=", "/files/content?path=a.txt", "/export", "/export?format=zip", "/files?path=../x"} {
		resp, _ := bob.Get(base + path)
		if body := read(t, resp); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "Secret plan") {
			t.Errorf("bob GET %s: %d, want 404", path, resp.StatusCode)
		}
	}

	// The owner's bad input is refused before any workspace is asked.
	for _, tc := range []struct{ path, field string }{
		{"/files?path=" + url.QueryEscape("../etc"), "path"},
		{"/files?path=" + url.QueryEscape("src/../../etc"), "path"},
		{"/files?path=" + url.QueryEscape("/etc"), "path"},
		{"/files?path=" + url.QueryEscape("a\x00b"), "path"},
		{"/files/content?path=" + url.QueryEscape("../../root/.local/share/opencode/auth.json"), "path"},
		{"/files/content?path=", "path"},
		{"/files/content?path=" + url.QueryEscape("a\nb"), "path"},
		{"/export?format=rar", "format"},
		{"/export?git=maybe", "git"},
	} {
		resp, _ := alice.Get(base + tc.path)
		body := read(t, resp)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field":"`+tc.field+`"`) {
			t.Errorf("alice GET %s: %d %s, want 400 about %s", tc.path, resp.StatusCode, body, tc.field)
		}
	}
	// A project whose setup has not finished has no files to show yet.
	pending := &store.Project{OwnerUserID: a.ID, Name: "Later", Slug: "later", Prompt: "y", ProviderID: "openai", ModelID: "gpt-5"}
	if _, _, err := e.store.CreateProject(context.Background(), pending, ""); err != nil {
		t.Fatal(err)
	}
	resp, _ := alice.Get(e.srv.URL + "/api/v1/projects/" + pending.ID + "/files?path=src")
	if body := read(t, resp); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "not_ready") {
		t.Errorf("files of a pending project: %d %s, want 409 not_ready", resp.StatusCode, body)
	}
}
