package repos_test

import (
	"context"
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

	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/repos"
)

// git runs git in dir with no user configuration and fixed identities, failing the test on error.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// pushServer is a git smart-HTTP server taking pushes to app.git (branch main) with basic
// credentials whose password is token; a pre-receive hook refuses pushes to "protected".
// work is a clone of it standing for a workspace.
func pushServer(t *testing.T) (srv *httptest.Server, bare, work string) {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	root := t.TempDir()
	work = t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README.md"), []byte("# app\n"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "first")
	bare = filepath.Join(root, "app.git")
	git(t, root, "clone", "-q", "--bare", work, "app.git")
	git(t, bare, "config", "http.receivepack", "true")
	hook := "#!/bin/sh\nwhile read old new ref; do [ \"$ref\" = refs/heads/protected ] && { echo 'protected branch hook declined' >&2; exit 1; }; done; exit 0\n"
	if err := os.WriteFile(filepath.Join(bare, "hooks", "pre-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: io.Discard}
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, bare, work
}

// commit adds a commit to the workspace and returns the path of a bundle of its HEAD, made as
// the workspace makes it.
func commitAndBundle(t *testing.T, work, file string) string {
	t.Helper()
	os.WriteFile(filepath.Join(work, file), []byte(file+"\n"), 0o644)
	git(t, work, "add", ".")
	git(t, work, "commit", "-q", "-m", "add "+file)
	return bundle(t, work)
}

func bundle(t *testing.T, work string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "work.bundle")
	git(t, work, "bundle", "create", "-q", path, "HEAD")
	return path
}

func TestPush(t *testing.T) {
	srv, bare, work := pushServer(t)
	ctx := context.Background()
	remote := repos.Source{URL: srv.URL + "/app.git", Username: "ada", Token: token}
	push := func(b, branch, base string) (repos.PushResult, error) {
		return repos.Push(ctx, loopback, repos.PushRequest{Remote: remote, Bundle: b, Branch: branch, Base: base}, limits)
	}
	refused := func(what string, err error, says string) {
		t.Helper()
		var re *repos.Error
		if !errors.As(err, &re) || !strings.Contains(re.Message, says) {
			t.Errorf("%s: %v, want a repos.Error saying %q", what, err, says)
		} else if re.TokenRefused != (what == "wrong token") {
			t.Errorf("%s: TokenRefused = %v", what, re.TokenRefused)
		}
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("%s: the error holds the token", what)
		}
	}

	// Nothing beyond the default branch yet.
	_, err := push(bundle(t, work), "work", "")
	refused("no commits", err, "Nothing to push: the workspace has no commits beyond main")

	b := commitAndBundle(t, work, "one.txt")
	head := git(t, work, "rev-parse", "HEAD")
	res, err := push(b, "work", "")
	if err != nil || res.Commit != head || res.Base != "main" || res.UpToDate {
		t.Fatalf("first push: %+v %v", res, err)
	}
	if got := git(t, bare, "rev-parse", "refs/heads/work"); got != head {
		t.Errorf("the forge's work is %s, want %s", got, head)
	}
	// Again, as a retried step would: nothing is sent.
	if res, err := push(b, "work", "main"); err != nil || !res.UpToDate || res.Commit != head {
		t.Errorf("second push: %+v %v", res, err)
	}
	// A later commit goes on top.
	b = commitAndBundle(t, work, "two.txt")
	if res, err := push(b, "work", "main"); err != nil || res.UpToDate || git(t, bare, "rev-parse", "refs/heads/work") != git(t, work, "rev-parse", "HEAD") {
		t.Errorf("push of a later commit: %+v %v", res, err)
	}

	// Someone else moved the branch: no force.
	other := t.TempDir()
	git(t, other, "init", "-q", "-b", "main")
	git(t, other, "commit", "-q", "--allow-empty", "-m", "elsewhere")
	git(t, bare, "fetch", "-q", other, "main:refs/heads/taken")
	_, err = push(b, "taken", "")
	refused("non-fast-forward", err, "has commits the workspace does not have")
	_, err = push(b, "protected", "")
	refused("protected", err, "refused the push to protected")
	_, err = repos.Push(ctx, loopback, repos.PushRequest{Remote: remote, Bundle: b, Branch: "main", OwnBranch: true}, limits)
	refused("pull request from the base", err, "needs a branch of its own")
	_, err = push(b, "feature", "nope")
	refused("missing base", err, `no branch "nope"`)

	bad := remote
	bad.Token = "wrong-token-1234"
	_, err = repos.Push(ctx, loopback, repos.PushRequest{Remote: bad, Bundle: b, Branch: "x"}, limits)
	refused("wrong token", err, "may write to this repository")
	_, err = repos.Push(ctx, &outbound.Policy{}, repos.PushRequest{Remote: remote, Bundle: b, Branch: "x"}, limits)
	refused("private address", err, "DOCE_ALLOWED_PRIVATE_HOSTS")

	// A damaged bundle is not pushed.
	raw, _ := os.ReadFile(b)
	for i := len(raw) - 40; i < len(raw)-20; i++ {
		raw[i] ^= 0xff
	}
	damaged := filepath.Join(t.TempDir(), "damaged.bundle")
	os.WriteFile(damaged, raw, 0o600)
	_, err = push(damaged, "damaged", "")
	refused("damaged bundle", err, "failed git's checks")
	if out, _ := exec.Command("git", "-C", bare, "rev-parse", "--verify", "-q", "refs/heads/damaged").Output(); len(out) != 0 {
		t.Errorf("the damaged bundle reached the forge")
	}
}
