package repos_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doce-dev/doce/repos"
)

// TestFetchBundle: the default branch, or the one named, is fetched with the token and bundled
// alone; a missing branch, a wrong token and a branch over the size limit are each a repos.Error
// without the token.
func TestFetchBundle(t *testing.T) {
	srv, bare, work := pushServer(t)
	ctx := context.Background()
	remote := repos.Source{URL: srv.URL + "/app.git", Username: "ada", Token: token}
	git(t, bare, "branch", "dev", "main")
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

	b := filepath.Join(t.TempDir(), "base.bundle")
	res, err := repos.FetchBundle(ctx, loopback, remote, "", b, limits)
	if err != nil || res.Base != "main" || res.Commit != git(t, bare, "rev-parse", "main") {
		t.Fatalf("default branch: %+v %v", res, err)
	}
	// The bundle carries that branch alone, and takes in a clone of the workspace.
	if heads := git(t, work, "bundle", "list-heads", b); heads != res.Commit+" refs/heads/main" {
		t.Errorf("the bundle's heads: %q", heads)
	}
	git(t, work, "fetch", "-q", b, "refs/heads/main:refs/doce/base")

	b = filepath.Join(t.TempDir(), "dev.bundle")
	if res, err := repos.FetchBundle(ctx, loopback, remote, "dev", b, limits); err != nil || res.Base != "dev" {
		t.Errorf("a named branch: %+v %v", res, err)
	}
	_, err = repos.FetchBundle(ctx, loopback, remote, "nope", filepath.Join(t.TempDir(), "b"), limits)
	refused("missing branch", err, `no branch "nope"`)
	wrong := remote
	wrong.Token = "not-the-token"
	_, err = repos.FetchBundle(ctx, loopback, wrong, "main", filepath.Join(t.TempDir(), "b"), limits)
	refused("wrong token", err, "a token that may read this repository")
	small := limits
	small.MaxBytes = 1
	_, err = repos.FetchBundle(ctx, loopback, remote, "main", filepath.Join(t.TempDir(), "b"), small)
	refused("over the limit", err, "larger than the limit")
}
