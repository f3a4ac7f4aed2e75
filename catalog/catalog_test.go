package catalog

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/doce-dev/doce/opencode"
)

// fakeWorkspace is an OpenCode server answering GET /provider with one openai model named model
// at the given input price.
func fakeWorkspace(t *testing.T, model string, input float64) *opencode.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"all":[{"id":"openai","name":"OpenAI","models":{%q:{"id":%q,"name":%q,"cost":{"input":%g}}}}]}`, model, model, model, input)
	}))
	t.Cleanup(srv.Close)
	return opencode.New(srv.URL, "pw", srv.Client())
}

// TestCatalogIsPerUser: a catalog read from one user's workspace is used for that user only;
// another user's workspace (hostile code, answering what it likes) decides nothing — neither the
// models offered nor the prices charged — for anyone else.
func TestCatalogIsPerUser(t *testing.T) {
	var c Catalog
	ctx := context.Background()
	c.Load(ctx, "alice", fakeWorkspace(t, "gpt-real", 2))
	c.Load(ctx, "mallory", fakeWorkspace(t, "gpt-trojan", 0.001))
	for user, want := range map[string]string{"alice": "gpt-real", "mallory": "gpt-trojan"} {
		ms, ok := c.Models(user, "openai")
		if !ok || len(ms) != 1 || ms[0].ID != want {
			t.Errorf("%s's catalog: %+v %v, want %s", user, ms, ok, want)
		}
	}
	if p, ok := c.Price("alice", "openai", "gpt-real"); !ok || p.Input != 2 {
		t.Errorf("alice's price: %+v %v, want input 2", p, ok)
	}
	if _, ok := c.Price("alice", "openai", "gpt-trojan"); ok {
		t.Error("alice was priced by mallory's catalog")
	}
	if ms, ok := c.Models("bob", "openai"); ok || c.Loaded("bob") {
		t.Errorf("bob, who has no workspace, was offered %+v", ms)
	}
	// A second workspace of alice's changes nothing once her catalog is read.
	c.Load(ctx, "alice", fakeWorkspace(t, "gpt-other", 9))
	if ms, _ := c.Models("alice", "openai"); len(ms) != 1 || ms[0].ID != "gpt-real" {
		t.Errorf("alice's catalog after a second read: %+v", ms)
	}
}
