package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/doce-dev/doce/opencode"
)

// fakeCatalog is an OpenCode server answering GET /provider with one openai model named model.
func fakeCatalog(t *testing.T, model string) *opencode.Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"all":[{"id":"openai","name":"OpenAI","models":{%q:{"id":%q,"name":%q}}}]}`, model, model, model)
	}))
	t.Cleanup(srv.Close)
	return opencode.New(srv.URL, "pw", srv.Client())
}

// TestModelCatalogIsPerUser: a catalog read from one user's workspace is offered to that user
// only; another user's workspace (hostile code, answering what it likes) decides nothing for
// anyone else.
func TestModelCatalogIsPerUser(t *testing.T) {
	var mc modelCatalog
	ctx := context.Background()
	mc.load(ctx, "alice", fakeCatalog(t, "gpt-real"))
	mc.load(ctx, "mallory", fakeCatalog(t, "gpt-trojan"))
	for user, want := range map[string]string{"alice": "gpt-real", "mallory": "gpt-trojan"} {
		ms, ok := mc.models(user, "openai")
		if !ok || len(ms) != 1 || ms[0].ID != want {
			t.Errorf("%s's catalog: %+v %v, want %s", user, ms, ok, want)
		}
	}
	if ms, ok := mc.models("bob", "openai"); ok {
		t.Errorf("bob, who has no workspace, was offered %+v", ms)
	}
	// A second workspace of alice's changes nothing once her catalog is read.
	mc.load(ctx, "alice", fakeCatalog(t, "gpt-other"))
	if ms, _ := mc.models("alice", "openai"); len(ms) != 1 || ms[0].ID != "gpt-real" {
		t.Errorf("alice's catalog after a second read: %+v", ms)
	}
}
