package activities

import (
	"errors"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// TestPushWork commits the workspace's change as the owner and pushes it to the forge with the
// token of the owner's connection; a second run changes nothing; a project with no connection
// to its forge is refused for a person to fix, and one whose token the forge no longer takes is
// refused naming the connection, which is marked as needing a new token.
func TestPushWork(t *testing.T) {
	backend, git := gitTools(t)
	root, work := t.TempDir(), t.TempDir()
	git(work, "init", "-q", "-b", "main")
	git(work, "commit", "-q", "--allow-empty", "-m", "first")
	bare := filepath.Join(root, "team", "app.git")
	git(work, "clone", "-q", "--bare", work, bare)
	git(bare, "config", "http.receivepack", "true")
	const token = "token-of-the-forge-0123"
	var seen []string
	accept := token // what the forge takes; another value revokes the connection's token
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: io.Discard}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pw, _ := r.BasicAuth()
		seen = append(seen, user+":"+pw)
		if pw != accept {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()

	r := newRig(t)
	policy, _ := outbound.Parse("127.0.0.1")
	p := r.project(t, "openai", "gpt-5")
	trees := &fakeTrees{work: work}
	acts := &Repositories{Store: r.st, Secrets: r.cipher, Workspace: trees, Policy: policy, Limits: repos.Limits{MaxBytes: 10 << 20, Timeout: time.Minute}}
	r.env.RegisterActivity(acts.PushWork)
	in := workflows.PushWorkInput{ProjectID: p.ID, Branch: "doce/work", Message: "Add a page"}
	refused := func(err error, says string) {
		t.Helper()
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != workflows.ErrTypePushRefused || !app.NonRetryable() || !strings.Contains(app.Message(), says) {
			t.Errorf("got %v, want a final refusal saying %q", err, says)
		}
	}

	_, err := r.env.ExecuteActivity(acts.PushWork, in)
	refused(err, "not made from a git repository")
	if _, err := r.st.DB.NewUpdate().Model((*store.Project)(nil)).Set("repository_url = ?", srv.URL+"/team/app.git").Where("id = ?", p.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	_, err = r.env.ExecuteActivity(acts.PushWork, in)
	refused(err, "Connect the forge of "+srv.URL+"/team/app.git")

	f := &store.ForgeConnection{ID: store.NewID(), UserID: r.user.ID, Kind: "gitea", BaseURL: srv.URL, AccountLogin: "ada"}
	f.TokenCiphertext = r.cipher.seal(secrets.ForgeContext(r.user.ID, f.ID), token)
	if err := r.st.CreateForgeConnection(r.ctx, f); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(work, "page.html"), []byte("<h1>hi</h1>\n"), 0o644)
	val, err := r.env.ExecuteActivity(acts.PushWork, in)
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.PushWorkResult
	if err := val.Get(&res); err != nil || !res.Committed || res.UpToDate || res.Base != "main" || res.Commit != git(work, "rev-parse", "HEAD") {
		t.Fatalf("push: %+v %v", res, err)
	}
	if got := git(bare, "rev-parse", "refs/heads/doce/work"); got != res.Commit {
		t.Errorf("the forge's branch is at %s, want %s", got, res.Commit)
	}
	if author := git(bare, "log", "-1", "--format=%an <%ae> %s", "refs/heads/doce/work"); author != r.user.Username+" <"+r.user.Username+"@doce.invalid> Add a page" {
		t.Errorf("commit: %s", author)
	}
	if !strings.Contains(strings.Join(seen, " "), "ada:"+token) {
		t.Errorf("the forge never saw the connection's credentials: %q", seen)
	}
	// Run again, as after a lost result: nothing to commit, nothing sent.
	val, err = r.env.ExecuteActivity(acts.PushWork, in)
	if err != nil {
		t.Fatal(err)
	}
	if err := val.Get(&res); err != nil || res.Committed || !res.UpToDate {
		t.Errorf("second run: %+v %v", res, err)
	}

	// The token is revoked on the forge.
	accept = "another-token"
	_, err = r.env.ExecuteActivity(acts.PushWork, in)
	refused(err, "Gitea at "+srv.URL+" refused the token of your connection to it (account ada)")
	if got, err := r.st.ForgeConnection(r.ctx, r.user.ID, f.ID); err != nil || got.TokenRefusedAt == nil {
		t.Errorf("the connection is not marked as needing a new token: %+v %v", got, err)
	}
}

// gitTools is git's smart-HTTP backend (the test skips without it) and a git that runs in a
// directory with a fixed identity and no user configuration, failing the test on an error.
func gitTools(t *testing.T) (backend string, git func(dir string, args ...string) string) {
	t.Helper()
	backend = "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	return backend, func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
}
