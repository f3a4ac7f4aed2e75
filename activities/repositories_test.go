package activities

import (
	"context"
	"errors"
	"fmt"
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
	"github.com/doce-dev/doce/workspace"
)

// fakeTrees records what Import places, as the workspace would hold it; work, when set, is a
// repository standing for the workspace's, which Commit and Bundle use as the workspace would.
type fakeTrees struct {
	has    bool
	err    error
	placed []string // files of the placed tree, relative
	work   string
}

func (f *fakeTrees) Commit(_ context.Context, _ string, author workspace.Author, message string) (bool, error) {
	if out, err := exec.Command("git", "-C", f.work, "add", "-A").CombinedOutput(); err != nil {
		return false, fmt.Errorf("%w: %s", err, out)
	}
	if exec.Command("git", "-C", f.work, "diff", "--cached", "--quiet").Run() == nil {
		return false, nil
	}
	cmd := exec.Command("git", "-C", f.work, "commit", "-q", "--no-verify", "-m", message)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME="+author.Name, "GIT_AUTHOR_EMAIL="+author.Email,
		"GIT_COMMITTER_NAME="+author.Name, "GIT_COMMITTER_EMAIL="+author.Email)
	if out, err := cmd.CombinedOutput(); err != nil {
		return false, fmt.Errorf("%w: %s", err, out)
	}
	return true, nil
}

func (f *fakeTrees) Bundle(_ context.Context, _ string, w io.Writer, max int64) error {
	cmd := exec.Command("git", "-C", f.work, "bundle", "create", "-q", "-", "HEAD")
	cmd.Stdout = w
	return cmd.Run()
}

// Merge fetches base from the bundle and merges it, as the workspace does; conflicts abort it.
func (f *fakeTrees) Merge(_ context.Context, _ string, r io.Reader, base string, author workspace.Author, message string) (workspace.MergeResult, error) {
	bundle := filepath.Join(f.work, ".git", "in.bundle")
	b, _ := io.ReadAll(r)
	if err := os.WriteFile(bundle, b, 0o600); err != nil {
		return workspace.MergeResult{}, err
	}
	defer os.Remove(bundle)
	gitIn := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", f.work}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME="+author.Name, "GIT_AUTHOR_EMAIL="+author.Email,
			"GIT_COMMITTER_NAME="+author.Name, "GIT_COMMITTER_EMAIL="+author.Email)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := gitIn("fetch", "-q", bundle, "+refs/heads/"+base+":refs/doce/base"); err != nil {
		return workspace.MergeResult{}, err
	}
	if _, err := gitIn("merge", "-q", "--no-edit", "-m", message, "refs/doce/base"); err != nil {
		files, _ := gitIn("diff", "--name-only", "--diff-filter=U")
		gitIn("merge", "--abort")
		return workspace.MergeResult{Conflicts: strings.Fields(files)}, nil
	}
	counts, err := gitIn("rev-list", "--left-right", "--count", "HEAD...refs/doce/base")
	var res workspace.MergeResult
	fmt.Sscanf(counts, "%d %d", &res.Ahead, &res.Behind)
	return res, err
}

func (f *fakeTrees) HasRepository(context.Context, string) (bool, error) { return f.has, f.err }

func (f *fakeTrees) PlaceTree(_ context.Context, _ string, dir string) error {
	return filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, path)
			f.placed = append(f.placed, filepath.ToSlash(rel))
		}
		return err
	})
}

// TestImportLendsTheTokenOfTheForgeItsURLIsUnder: the owner's forge connection whose address
// the repository's URL is under lends its token (the longest such address); a URL under none
// of them is cloned without one, so no forge's token ever goes to another address.
func TestImportLendsTheTokenOfTheForgeItsURLIsUnder(t *testing.T) {
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	root, work := t.TempDir(), t.TempDir()
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"commit", "-q", "--allow-empty", "-m", "first"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	if out, err := exec.Command("git", "clone", "-q", "--bare", work, filepath.Join(root, "team", "app.git")).CombinedOutput(); err != nil {
		t.Fatalf("git clone --bare: %v\n%s", err, out)
	}
	// Two forges serving the same repository; the owner connected the first only.
	var seen []string
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: io.Discard}
	serve := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		seen = append(seen, pw)
		h.ServeHTTP(w, r)
	})
	srv, other := httptest.NewServer(serve), httptest.NewServer(serve)
	defer srv.Close()
	defer other.Close()

	r := newRig(t)
	policy, _ := outbound.Parse("127.0.0.1")
	connect := func(base, token string) {
		f := &store.ForgeConnection{ID: store.NewID(), UserID: r.user.ID, Kind: "gitea", BaseURL: base, AccountLogin: "ada"}
		f.TokenCiphertext = r.cipher.seal(secrets.ForgeContext(r.user.ID, f.ID), token)
		if err := r.st.CreateForgeConnection(r.ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	connect(srv.URL, "token-of-the-forge")
	connect(srv.URL+"/team", "token-of-the-team-path")
	connect("http://127.0.0.2:1", "token-of-another-forge")

	for _, tc := range []struct {
		url, want string // want: the token the server saw, "" none
	}{
		{srv.URL + "/team/app.git", "token-of-the-team-path"},
		{other.URL + "/team/app.git", ""},
	} {
		seen = nil
		p := r.project(t, "openai", "gpt-5")
		if _, err := r.st.DB.NewUpdate().Model((*store.Project)(nil)).Set("repository_url = ?", tc.url).Where("id = ?", p.ID).Exec(r.ctx); err != nil {
			t.Fatal(err)
		}
		trees := &fakeTrees{}
		acts := &Repositories{Store: r.st, Secrets: r.cipher, Workspace: trees, Policy: policy, Limits: repos.Limits{MaxBytes: 10 << 20, Timeout: time.Minute}}
		r.env.RegisterActivity(acts.Import)
		if _, err := r.env.ExecuteActivity(acts.Import, workflows.StepInput{ProjectID: p.ID}); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if len(trees.placed) == 0 || !strings.Contains(strings.Join(trees.placed, " "), ".git/HEAD") {
			t.Errorf("%s: placed %v", tc.url, trees.placed)
		}
		// What git said it received is recorded for the setup page.
		if got, err := r.st.Project(r.ctx, p.ID); err != nil || got.ImportObjects == 0 || got.ImportObjects != got.ImportTotalObjects || got.ImportBytes == 0 {
			t.Errorf("%s: the clone's progress recorded: %d of %d objects, %d bytes (%v)", tc.url, got.ImportObjects, got.ImportTotalObjects, got.ImportBytes, err)
		}
		for _, pw := range seen {
			if pw != tc.want && pw != "" {
				t.Errorf("%s: the server saw token %q, want %q", tc.url, pw, tc.want)
			}
		}
		if tc.want != "" && !strings.Contains(strings.Join(seen, " "), tc.want) {
			t.Errorf("%s: the server never saw %q (saw %q)", tc.url, tc.want, seen)
		}
	}
}

// TestImportLeavesAPlacedRepositoryAlone: an attempt after one whose result was lost changes
// nothing; a workspace that started without its repository is a final failure.
func TestImportLeavesAPlacedRepositoryAlone(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if _, err := r.st.DB.NewUpdate().Model((*store.Project)(nil)).Set("repository_url = ?", "https://git.example.com/team/app.git").Where("id = ?", p.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	trees := &fakeTrees{has: true}
	acts := &Repositories{Store: r.st, Secrets: r.cipher, Workspace: trees, Policy: &outbound.Policy{}, Limits: repos.Limits{MaxBytes: 1 << 20, Timeout: time.Second}}
	r.env.RegisterActivity(acts.Import)
	if _, err := r.env.ExecuteActivity(acts.Import, workflows.StepInput{ProjectID: p.ID}); err != nil || len(trees.placed) != 0 {
		t.Fatalf("placed again: %v %v", trees.placed, err)
	}
	trees.has, trees.err = false, workspace.ErrStartedWithoutImport
	_, err := r.env.ExecuteActivity(acts.Import, workflows.StepInput{ProjectID: p.ID})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != workflows.ErrTypeImportRefused || !app.NonRetryable() || !strings.Contains(app.Message(), "started empty") {
		t.Fatalf("a workspace that started without it: %v", err)
	}
}
