package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/doce-dev/doce/store"
)

func TestProjectEgressAPI(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	a, _ := e.store.UserByUsername(context.Background(), "alice")
	p := &store.Project{OwnerUserID: a.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
	if _, _, err := e.store.CreateProject(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	put := func(c *http.Client, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, e.srv.URL+"/api/v1/projects/"+p.ID+"/egress", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, read(t, resp)
	}
	if code, body := put(alice, `{"mode":"allow-list","allow":["Registry.npmjs.org","*.pypi.org","registry.npmjs.org"]}`); code != http.StatusOK ||
		!strings.Contains(body, `"effective":"allow-list"`) || !strings.Contains(body, `"allow":["registry.npmjs.org","*.pypi.org"]`) {
		t.Errorf("set allow-list: %d %s", code, body)
	}
	got, _ := e.store.Project(context.Background(), p.ID)
	if got.EgressMode != "allow-list" || got.EgressAllow != "registry.npmjs.org,*.pypi.org" {
		t.Errorf("stored %q %q", got.EgressMode, got.EgressAllow)
	}
	for body, field := range map[string]string{
		`{"mode":"wide-open"}`:                           "mode",
		`{"mode":"allow-list","allow":["http://x.org"]}`: "allow",
		`{"mode":"allow-list","allow":["a b"]}`:          "allow",
	} {
		if code, out := put(alice, body); code != http.StatusBadRequest || !strings.Contains(out, `"field":"`+field+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", body, code, out, field)
		}
	}
	if code, _ := put(bob, `{"mode":"open"}`); code != http.StatusNotFound {
		t.Errorf("bob sets alice's egress: %d, want 404", code)
	}
	resp, _ := alice.Get(e.srv.URL + "/api/v1/projects/" + p.ID + "/egress")
	if body := read(t, resp); !strings.Contains(body, `"mode":"allow-list"`) {
		t.Errorf("get: %s", body)
	}
	if code, body := put(alice, `{"mode":""}`); code != http.StatusOK || !strings.Contains(body, `"mode":""`) {
		t.Errorf("back to the default: %d %s", code, body)
	}
	// The project page's form: one host a line.
	resp, _ = alice.PostForm(e.srv.URL+"/projects/"+p.ID+"/egress", url.Values{"mode": {"allow-list"}, "allow": {"pypi.org\r\n*.pythonhosted.org\n"}})
	if read(t, resp); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("page form: %d, want 303", resp.StatusCode)
	}
	if got, _ := e.store.Project(context.Background(), p.ID); got.EgressAllow != "pypi.org,*.pythonhosted.org" {
		t.Errorf("page form stored %q", got.EgressAllow)
	}
	resp, _ = alice.Get(e.srv.URL + "/projects/" + p.ID)
	if body := read(t, resp); !strings.Contains(body, "Internet access: allow-list") || !strings.Contains(body, "*.pythonhosted.org") {
		t.Error("the project page does not show the egress")
	}
}
