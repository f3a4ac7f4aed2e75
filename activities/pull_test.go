package activities

import (
	"errors"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
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

// TestPullWork fetches the forge's default branch with the connection's token, commits the
// workspace's change and merges the base into it; a base that changed the same lines as the
// workspace ends the pull naming the file, the merge aborted; a branch the forge lacks is
// refused for a person to fix.
func TestPullWork(t *testing.T) {
	backend, git := gitTools(t)
	root, work, other := t.TempDir(), t.TempDir(), t.TempDir()
	git(work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("one\n"), 0o644)
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "first")
	bare := filepath.Join(root, "team", "app.git")
	git(work, "clone", "-q", "--bare", work, bare)
	// other stands for someone working on the forge's main branch.
	git(other, "clone", "-q", bare, ".")
	forgeCommit := func(file, content string) string {
		t.Helper()
		os.WriteFile(filepath.Join(other, file), []byte(content), 0o644)
		git(other, "add", ".")
		git(other, "commit", "-q", "-m", "change "+file)
		git(other, "push", "-q", "origin", "main")
		return git(other, "rev-parse", "HEAD")
	}
	const token = "token-of-the-forge-0123"
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: io.Discard}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, _ := r.BasicAuth(); pw != token {
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
	if _, err := r.st.DB.NewUpdate().Model((*store.Project)(nil)).Set("repository_url = ?", srv.URL+"/team/app.git").Where("id = ?", p.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	f := &store.ForgeConnection{ID: store.NewID(), UserID: r.user.ID, Kind: "gitea", BaseURL: srv.URL, AccountLogin: "ada"}
	f.TokenCiphertext = r.cipher.seal(secrets.ForgeContext(r.user.ID, f.ID), token)
	if err := r.st.CreateForgeConnection(r.ctx, f); err != nil {
		t.Fatal(err)
	}
	acts := &Repositories{Store: r.st, Secrets: r.cipher, Workspace: &fakeTrees{work: work}, Policy: policy, Limits: repos.Limits{MaxBytes: 10 << 20, Timeout: time.Minute}}
	r.env.RegisterActivity(acts.PullWork)
	refused := func(err error, says string) {
		t.Helper()
		var app *temporal.ApplicationError
		if !errors.As(err, &app) || app.Type() != workflows.ErrTypePushRefused || !app.NonRetryable() || !strings.Contains(app.Message(), says) {
			t.Errorf("got %v, want a final refusal saying %q", err, says)
		}
	}

	base := forgeCommit("b.txt", "from the forge\n")
	os.WriteFile(filepath.Join(work, "c.txt"), []byte("the agent's\n"), 0o644)
	val, err := r.env.ExecuteActivity(acts.PullWork, workflows.PullWorkInput{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.PullWorkResult
	if err := val.Get(&res); err != nil || res.Base != "main" || res.Commit != base || res.Ahead != 2 || res.Behind != 0 {
		t.Fatalf("pull: %+v %v; want main at %s, 2 ahead (the agent's commit and the merge), 0 behind", res, err, base)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "b.txt")); string(b) != "from the forge\n" {
		t.Errorf("b.txt after the pull: %q", b)
	}
	if st := git(work, "status", "--porcelain"); st != "" {
		t.Errorf("the workspace is not clean after the pull: %s", st)
	}

	forgeCommit("a.txt", "the forge's one\n")
	os.WriteFile(filepath.Join(work, "a.txt"), []byte("the agent's one\n"), 0o644)
	_, err = r.env.ExecuteActivity(acts.PullWork, workflows.PullWorkInput{ProjectID: p.ID, Base: "main"})
	refused(err, "changed the same lines as the project's work in: a.txt.")
	if b, _ := os.ReadFile(filepath.Join(work, "a.txt")); string(b) != "the agent's one\n" {
		t.Errorf("a.txt after the conflict: %q, want the workspace's own", b)
	}
	if st := git(work, "status", "--porcelain"); st != "" {
		t.Errorf("the merge was not aborted: %s", st)
	}

	_, err = r.env.ExecuteActivity(acts.PullWork, workflows.PullWorkInput{ProjectID: p.ID, Base: "nope"})
	refused(err, `no branch "nope"`)
}
