package forges_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/doce-dev/doce/forges"
)

// pullForge keeps pull requests the way each kind's API shows them, for goodToken only: the
// repository ada/app (GitLab: group/sub/app) with branches main and work.
type pullForge struct {
	kind string
	mu   sync.Mutex
	prs  []map[string]any // head, base, state, number
}

func (f *pullForge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	tok := r.Header.Get("PRIVATE-TOKEN") + strings.TrimPrefix(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), "token ")
	if tok != goodToken {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
		return
	}
	var in map[string]string
	_ = json.NewDecoder(r.Body).Decode(&in)
	path := r.URL.EscapedPath()
	web := "http://" + r.Host
	switch {
	// GitHub
	case f.kind == forges.GitHub && r.Method == http.MethodGet && path == "/api/v3/repos/ada/app/pulls":
		out := []map[string]any{}
		for _, pr := range f.prs {
			if "ada:"+pr["head"].(string) == r.URL.Query().Get("head") && pr["base"] == r.URL.Query().Get("base") && pr["state"] == "open" {
				out = append(out, map[string]any{"number": pr["number"], "html_url": fmt.Sprintf("%s/ada/app/pull/%d", web, pr["number"])})
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case f.kind == forges.GitHub && r.Method == http.MethodPost && path == "/api/v3/repos/ada/app/pulls":
		if in["base"] != "main" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"Validation Failed","errors":[{"resource":"PullRequest","field":"base","code":"invalid"},{"message":"No commits between x and work"}]}`))
			return
		}
		n := f.add(in["head"], in["base"])
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"number": n, "html_url": fmt.Sprintf("%s/ada/app/pull/%d", web, n)})
	// GitLab
	case f.kind == forges.GitLab && r.Method == http.MethodGet && path == "/api/v4/projects/group%2Fsub%2Fapp/merge_requests":
		out := []map[string]any{}
		q := r.URL.Query()
		for _, pr := range f.prs {
			if pr["head"] == q.Get("source_branch") && pr["base"] == q.Get("target_branch") && q.Get("state") == "opened" && pr["state"] == "open" {
				out = append(out, map[string]any{"iid": pr["number"], "web_url": fmt.Sprintf("%s/group/sub/app/-/merge_requests/%d", web, pr["number"])})
			}
		}
		_ = json.NewEncoder(w).Encode(out)
	case f.kind == forges.GitLab && r.Method == http.MethodPost && path == "/api/v4/projects/group%2Fsub%2Fapp/merge_requests":
		if in["target_branch"] != "main" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":["The target branch does not exist"]}`))
			return
		}
		n := f.add(in["source_branch"], in["target_branch"])
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"iid": n, "web_url": fmt.Sprintf("%s/group/sub/app/-/merge_requests/%d", web, n)})
	// Gitea
	case f.kind == forges.Gitea && r.Method == http.MethodGet && strings.HasPrefix(path, "/api/v1/repos/ada/app/pulls/"):
		base, head, _ := strings.Cut(strings.TrimPrefix(path, "/api/v1/repos/ada/app/pulls/"), "/")
		for i := len(f.prs) - 1; i >= 0; i-- {
			if pr := f.prs[i]; pr["head"] == head && pr["base"] == base {
				_ = json.NewEncoder(w).Encode(map[string]any{"number": pr["number"], "state": pr["state"], "html_url": fmt.Sprintf("%s/ada/app/pulls/%d", web, pr["number"])})
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"pull request does not exist"}`))
	case f.kind == forges.Gitea && r.Method == http.MethodPost && path == "/api/v1/repos/ada/app/pulls":
		if in["base"] != "main" {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"message":"There are no changes between the head and the base"}`))
			return
		}
		n := f.add(in["head"], in["base"])
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"number": n, "state": "open", "html_url": fmt.Sprintf("%s/ada/app/pulls/%d", web, n)})
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"Not Found"}`))
	}
}

func (f *pullForge) add(head, base string) int {
	n := len(f.prs) + 1
	f.prs = append(f.prs, map[string]any{"head": head, "base": base, "state": "open", "number": n})
	return n
}

// TestPullRequests: each kind finds no pull request, opens one, then finds that one; a
// closed one is not found; a refused one carries the forge's reason; a wrong token and a
// repository that is not there are told apart.
func TestPullRequests(t *testing.T) {
	repos := map[string]string{forges.GitHub: "ada/app", forges.GitLab: "group/sub/app", forges.Gitea: "ada/app"}
	for _, kind := range forges.Kinds {
		t.Run(kind, func(t *testing.T) {
			fake := &pullForge{kind: kind}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			ctx := context.Background()
			f, err := forges.Open(kind, srv.URL, goodToken, loopback(t))
			if err != nil {
				t.Fatal(err)
			}
			repo := repos[kind]
			if pr, err := f.FindPullRequest(ctx, repo, "work", "main"); err != nil || pr != nil {
				t.Fatalf("find before: %+v %v", pr, err)
			}
			pr, err := f.OpenPullRequest(ctx, repo, "work", "main", "Add a page", "Made in doce.")
			if err != nil || pr.Number != 1 || !strings.HasPrefix(pr.URL, srv.URL+"/") || !strings.HasSuffix(pr.URL, "/1") {
				t.Fatalf("open: %+v %v", pr, err)
			}
			if got, err := f.FindPullRequest(ctx, repo, "work", "main"); err != nil || got == nil || *got != pr {
				t.Fatalf("find after: %+v %v, want %+v", got, err, pr)
			}
			if got, err := f.FindPullRequest(ctx, repo, "other", "main"); err != nil || got != nil {
				t.Errorf("find another head: %+v %v", got, err)
			}
			fake.prs[0]["state"] = "closed"
			if got, err := f.FindPullRequest(ctx, repo, "work", "main"); err != nil || got != nil {
				t.Errorf("find a closed one: %+v %v", got, err)
			}

			_, err = f.OpenPullRequest(ctx, repo, "work", "gone", "t", "")
			var re *forges.RefusedError
			if !errors.As(err, &re) || re.Reason == "" {
				t.Errorf("refused: %v", err)
			}
			if _, err := f.OpenPullRequest(ctx, "ada/nothing", "work", "main", "t", ""); !errors.Is(err, forges.ErrNoRepository) {
				t.Errorf("no repository: %v", err)
			}
			bad, _ := forges.Open(kind, srv.URL, "wrong-token", loopback(t))
			if _, err := bad.OpenPullRequest(ctx, repo, "work", "main", "t", ""); !errors.Is(err, forges.ErrUnauthorized) {
				t.Errorf("wrong token, open: %v", err)
			}
			if _, err := bad.FindPullRequest(ctx, repo, "work", "main"); !errors.Is(err, forges.ErrUnauthorized) {
				t.Errorf("wrong token, find: %v", err)
			}
		})
	}
}

func TestRepoPath(t *testing.T) {
	for _, tc := range []struct{ base, clone, want string }{
		{"https://github.com", "https://github.com/ada/app.git", "ada/app"},
		{"https://github.com", "https://github.com/ada/app", "ada/app"},
		{"https://gitlab.example.com/sub", "https://gitlab.example.com/sub/group/team/app.git", "group/team/app"},
		{"http://127.0.0.1:3000", "http://127.0.0.1:3000/ada/app.git", "ada/app"},
		{"https://github.com", "https://gitlab.com/ada/app.git", ""},
		{"https://github.com", "https://github.com/app.git", ""},
		{"https://git.example.com/sub", "https://git.example.com/other/ada/app.git", ""},
	} {
		got, err := forges.RepoPath(tc.base, tc.clone)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("RepoPath(%s, %s) = %q, %v; want %q", tc.base, tc.clone, got, err, tc.want)
		}
	}
}
