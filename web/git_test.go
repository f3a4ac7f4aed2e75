package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
)

// TestPushRefusals: every push that cannot work as asked is refused before a workflow starts,
// with a 4xx a person can act on; another user's project is 404; GET /git shows the branch a
// push goes to and the last push.
func TestPushRefusals(t *testing.T) {
	e, alice, bob, ctx, aliceID, fromPrompt, p, api, expect := gitFixture(t, "push")
	ok := map[string]any{"branch": "doce/shop", "message": "Add a cart"}
	expect("another user's project", bob, p.ID, ok, http.StatusNotFound, "", "No such project")
	expect("a project from a prompt", alice, fromPrompt.ID, ok, http.StatusConflict, "", "not made from a git repository")
	expect("no forge connection", alice, p.ID, ok, http.StatusConflict, "", "Connect the forge of https://git.example.com/alice/shop.git")

	f := &store.ForgeConnection{ID: store.NewID(), UserID: aliceID, Kind: "gitea", BaseURL: "https://git.example.com",
		AccountLogin: "alice", TokenCiphertext: "vault:v1:sealed", DisplayHint: "…6789"}
	if err := e.store.CreateForgeConnection(ctx, f); err != nil {
		t.Fatal(err)
	}
	expect("a bad branch", alice, p.ID, map[string]any{"branch": "my change"}, http.StatusBadRequest, "branch", "not a branch name git accepts")
	expect("a hidden part", alice, p.ID, map[string]any{"branch": "doce/.x"}, http.StatusBadRequest, "branch", "not a branch name")
	expect("a bad base", alice, p.ID, map[string]any{"branch": "x", "pullRequest": map[string]any{"base": "a..b"}}, http.StatusBadRequest, "pullRequest.base", "not a branch name")
	expect("the base itself", alice, p.ID, map[string]any{"branch": "dev", "pullRequest": map[string]any{"title": "t"}}, http.StatusBadRequest, "branch", "branch of its own")
	expect("a title with a line break", alice, p.ID, map[string]any{"pullRequest": map[string]any{"title": "a\nb"}}, http.StatusBadRequest, "pullRequest.title", "control characters")
	expect("a long message", alice, p.ID, map[string]any{"message": strings.Repeat("x", 10001)}, http.StatusBadRequest, "message", "under 10000 characters")
	expect("not JSON", alice, p.ID, "[", http.StatusBadRequest, "", "not valid JSON")

	// While a push runs, another is refused.
	if err := e.store.RecordPushStarted(ctx, p.ID, "doce/shop", time.Now()); err != nil {
		t.Fatal(err)
	}
	expect("a push running", alice, p.ID, ok, http.StatusConflict, "", "A push or pull of this project is running")

	resp, body := do(t, alice, "GET", api+fromPrompt.ID+"/git", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"repository":""`) || !strings.Contains(body, `"branch":"doce/shop"`) || strings.Contains(body, "lastPush") {
		t.Errorf("git of a project from a prompt: %d %s", resp.StatusCode, body)
	}
	e.store.RecordPush(ctx, p.ID, "doce/shop", store.PushOutcome{Status: store.PushFailed, Error: "The forge refused the push to doce/shop."})
	resp, body = do(t, alice, "GET", api+p.ID+"/git", "", nil)
	var g struct {
		Git struct {
			Repository, Branch string
			LastPush           *struct{ Status, Error string }
		}
	}
	if json.Unmarshal([]byte(body), &g); resp.StatusCode != http.StatusOK || g.Git.Repository != p.RepositoryURL || g.Git.Branch != "doce/shop" ||
		g.Git.LastPush == nil || g.Git.LastPush.Status != "failed" || !strings.Contains(g.Git.LastPush.Error, "refused the push") {
		t.Errorf("git after a failed push: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, bob, "GET", api+p.ID+"/git", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob reads alice's git: %d", resp.StatusCode)
	}

}

// TestPullRefusals: every pull that cannot work as asked is refused before a workflow starts;
// GET /git shows the last pull with the counts it took.
func TestPullRefusals(t *testing.T) {
	e, alice, bob, ctx, aliceID, fromPrompt, p, api, expect := gitFixture(t, "pull")
	ok := map[string]any{}
	expect("another user's project", bob, p.ID, ok, http.StatusNotFound, "", "No such project")
	expect("a project from a prompt", alice, fromPrompt.ID, ok, http.StatusConflict, "", "not made from a git repository")
	expect("no forge connection", alice, p.ID, ok, http.StatusConflict, "", "Connect the forge of https://git.example.com/alice/shop.git")
	f := &store.ForgeConnection{ID: store.NewID(), UserID: aliceID, Kind: "gitea", BaseURL: "https://git.example.com",
		AccountLogin: "alice", TokenCiphertext: "vault:v1:sealed", DisplayHint: "…6789"}
	if err := e.store.CreateForgeConnection(ctx, f); err != nil {
		t.Fatal(err)
	}
	expect("a bad base", alice, p.ID, map[string]any{"base": "a..b"}, http.StatusBadRequest, "base", "not a branch name")
	expect("not JSON", alice, p.ID, "[", http.StatusBadRequest, "", "not valid JSON")
	if err := e.store.RecordPullStarted(ctx, p.ID, "dev", time.Now()); err != nil {
		t.Fatal(err)
	}
	expect("a pull running", alice, p.ID, ok, http.StatusConflict, "", "A push or pull of this project is running")

	ahead, behind := 3, 0
	e.store.RecordPull(ctx, p.ID, store.PullOutcome{Status: store.PushDone, Commit: "abc", Ahead: &ahead, Behind: &behind})
	resp, body := do(t, alice, "GET", api+p.ID+"/git", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"lastPull":{"status":"done",`) ||
		!strings.Contains(body, `"base":"dev","commit":"abc","ahead":3,"behind":0}`) {
		t.Errorf("git after a pull: %d %s", resp.StatusCode, body)
	}
}

// gitFixture is alice with two ready projects (one made from a prompt, one from a repository),
// bob, and expect: POST /git/<route> on a project answers code with an error on field saying says.
func gitFixture(t *testing.T, route string) (e *env, alice, bob *http.Client, ctx context.Context, aliceID string, fromPrompt, p *store.Project, api string,
	expect func(what string, c *http.Client, id string, body any, code int, field, says string)) {
	t.Helper()
	e = newEnv(t)
	alice, bob = e.user(t, "alice"), e.user(t, "bob")
	ctx = context.Background()
	aliceID = mustUser(t, e, "alice")
	mk := func(repo string) *store.Project {
		p := &store.Project{OwnerUserID: aliceID, Name: "Shop", Slug: "shop", ProviderID: "openai", ModelID: "gpt-5", RepositoryURL: repo, RepositoryRef: "dev"}
		if _, _, err := e.store.CreateProject(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.DB.NewUpdate().Model((*store.Project)(nil)).Set("status = ?", status.Ready).Where("id = ?", p.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fromPrompt = mk("")
	p = mk("https://git.example.com/alice/shop.git")
	api = e.srv.URL + "/api/v1/projects/"
	expect = func(what string, c *http.Client, id string, body any, code int, field, says string) {
		t.Helper()
		resp, got := do(t, c, "POST", api+id+"/git/"+route, "", body)
		var out struct {
			Error struct{ Code, Message, Field string }
		}
		_ = json.Unmarshal([]byte(got), &out)
		if resp.StatusCode != code || out.Error.Field != field || !strings.Contains(out.Error.Message, says) {
			t.Errorf("%s: %d %s; want %d on %q saying %q", what, resp.StatusCode, got, code, field, says)
		}
	}
	return
}
