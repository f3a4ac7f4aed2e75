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
	"time"

	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/repos"
)

const token = "tok-clone-0123456789abcdef"

// gitServer is a real git smart-HTTP server (git http-backend) on loopback serving one
// repository, app.git, with a branch "feature"; with private set it asks for basic credentials
// whose password is token.
func gitServer(t *testing.T, private bool) (*httptest.Server, *[]string) {
	t.Helper()
	backend := "/usr/lib/git-core/git-http-backend"
	if _, err := os.Stat(backend); err != nil {
		t.Skip("git http-backend is not installed")
	}
	root := t.TempDir()
	work := t.TempDir()
	git := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git(work, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(work, "README.md"), []byte("# app\n"), 0o644)
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "first")
	git(work, "checkout", "-q", "-b", "feature")
	os.WriteFile(filepath.Join(work, "feature.txt"), []byte("on the feature branch\n"), 0o644)
	git(work, "add", ".")
	git(work, "commit", "-q", "-m", "feature")
	git(root, "clone", "-q", "--bare", work, "app.git")
	var auths []string
	h := &cgi.Handler{Path: backend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}, Stderr: io.Discard}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auths = append(auths, r.Header.Get("Authorization"))
		if private {
			if _, pw, ok := r.BasicAuth(); !ok || pw != token {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &auths
}

var loopback, _ = outbound.Parse("127.0.0.1")

var limits = repos.Limits{MaxBytes: 10 << 20, Timeout: time.Minute}

func TestCloneWithTokenLeavesNoCredential(t *testing.T) {
	srv, auths := gitServer(t, true)
	dir := filepath.Join(t.TempDir(), "clone")
	err := repos.Clone(context.Background(), loopback, repos.Source{URL: srv.URL + "/app.git", Ref: "feature", Username: "ada", Token: token},
		dir, limits, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "feature.txt")); err != nil || string(b) != "on the feature branch\n" {
		t.Fatalf("feature.txt: %q %v", b, err)
	}
	config, _ := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if !strings.Contains(string(config), "url = "+srv.URL+"/app.git") {
		t.Errorf(".git/config has no origin: %s", config)
	}
	// Nothing under the clone holds the token or the header made of it.
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(path); strings.Contains(string(b), token) || strings.Contains(string(b), "Authorization") {
				t.Errorf("%s holds the credential", path)
			}
		}
		return nil
	})
	if len(*auths) == 0 || !strings.HasPrefix((*auths)[0], "Basic ") {
		t.Errorf("the server saw no basic credentials: %q", *auths)
	}
}

func TestCloneRefusals(t *testing.T) {
	private, _ := gitServer(t, true)
	public, _ := gitServer(t, false)
	for _, tc := range []struct {
		name   string
		policy *outbound.Policy
		src    repos.Source
		lim    repos.Limits
		says   string
	}{
		{"no token", loopback, repos.Source{URL: private.URL + "/app.git"}, limits, "needs a token"},
		{"wrong token", loopback, repos.Source{URL: private.URL + "/app.git", Username: "ada", Token: "wrong"}, limits, "refused the token"},
		{"no such ref", loopback, repos.Source{URL: public.URL + "/app.git", Ref: "nope"}, limits, `no branch or tag "nope"`},
		{"no such repository", loopback, repos.Source{URL: public.URL + "/other.git"}, limits, "No repository answered"},
		{"too large", loopback, repos.Source{URL: public.URL + "/app.git"}, repos.Limits{MaxBytes: 1, Timeout: time.Minute}, "larger than the import limit"},
		{"private address", &outbound.Policy{}, repos.Source{URL: public.URL + "/app.git"}, limits, "DOCE_ALLOWED_PRIVATE_HOSTS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := repos.Clone(context.Background(), tc.policy, tc.src, filepath.Join(t.TempDir(), "clone"), tc.lim, nil)
			var re *repos.Error
			if !errors.As(err, &re) || !strings.Contains(re.Message, tc.says) {
				t.Fatalf("got %v, want a repos.Error saying %q", err, tc.says)
			}
			if re.TokenRefused != (tc.name == "wrong token") {
				t.Errorf("TokenRefused = %v", re.TokenRefused)
			}
			if strings.Contains(err.Error(), "wrong") && tc.name == "wrong token" {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for raw, ok := range map[string]bool{
		"https://git.example.com/team/app.git":  true,
		"http://127.0.0.1:3000/a/b":             true,
		"":                                      false,
		"git@example.com:team/app.git":          false,
		"file:///etc":                           false,
		"https://git.example.com":               false,
		"https://ada:tok@git.example.com/a.git": false,
		"https://git.example.com/a.git?x=1":     false,
	} {
		if _, err := repos.ValidateURL(raw); (err == nil) != ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
	for u, want := range map[string]string{"https://git.example.com/team/app.git": "app", "https://git.example.com/team/app/": "app", "https://git.example.com/x": "x"} {
		if got := repos.Name(u); got != want {
			t.Errorf("Name(%q) = %q, want %q", u, got, want)
		}
	}
	for ref, ok := range map[string]bool{"": true, "main": true, "release/1.2": true, "v1.0.0": true,
		"-x": false, "a..b": false, "a b": false, "a:b": false, "x.lock": false, "a~1": false} {
		if err := repos.ValidateRef(ref); (err == nil) != ok {
			t.Errorf("ValidateRef(%q) = %v, want ok=%v", ref, err, ok)
		}
	}
	for branch, ok := range map[string]bool{"main": true, "doce/my-change": true, "v1.2": true, "": false, "HEAD": false, "@": false,
		"a/.hidden": false, ".x": false, "x.": false, "refs/heads/x": false, "a..b": false, "a b": false, "-x": false} {
		if err := repos.ValidateBranch(branch); (err == nil) != ok {
			t.Errorf("ValidateBranch(%q) = %v, want ok=%v", branch, err, ok)
		}
	}
}
