package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pullAndWait asks for a pull and waits until it has ended, returning how.
func pullAndWait(t *testing.T, hc *recordingClient, doce *doceProcess, id string, in map[string]any) gitState {
	t.Helper()
	return gitRunAndWait(t, hc, doce, id, "pull", in, func(g gitState) (string, time.Time, any) {
		if g.LastPull == nil {
			return "", time.Time{}, nil
		}
		return g.LastPull.Status, g.LastPull.At, g.LastPull
	})
}

// inSight waits until the element id holds text and lies whole in the visible part of the
// workbench (a scroll box of its own) and of the window, saying where it is when it does not.
func inSight(t *testing.T, ctx context.Context, id, text string) {
	t.Helper()
	js := fmt.Sprintf(`(function () {
  var e = document.getElementById(%q), b = e && e.closest(".bench");
  if (!e || !b) return "no element";
  var r = e.getBoundingClientRect(), v = b.getBoundingClientRect();
  var ok = e.textContent.indexOf(%q) >= 0 && r.height > 0 && r.top >= v.top && r.bottom <= v.bottom + 1 && r.top >= 0 && r.bottom <= window.innerHeight + 1;
  return ok ? "" : JSON.stringify({text: e.textContent, top: r.top, bottom: r.bottom, benchTop: v.top, benchBottom: v.bottom, window: window.innerHeight});
})()`, id, text)
	var where string
	deadline := time.Now().Add(10 * time.Second)
	for {
		run(t, ctx, "where #"+id+" is", chromedp.Evaluate(js, &where))
		if where == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("#%s is not in sight with %q: %s", id, text, where)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestForgePullGitea makes a project from a private repository on a real Gitea, changes a file
// on Gitea's main branch through its API while the workspace has work of its own, and pulls:
// the workspace has Gitea's change and its own, committed, and the Git state counts the
// workspace ahead and not behind. Then Gitea and the workspace change the same line: the pull
// fails naming the file, and the workspace's files are as they were (the merge aborted). The
// page's Git tab shows the conflict, and its Pull button merges once the workspace takes Gitea's
// line. The forge token is nowhere in the workspace, the container's configuration, the pull's
// workflow history, doce's answers or its log.
func TestForgePullGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-pull-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-pull-e2e")
	downWorkspacesAtEnd(t, doce)

	repo := fmt.Sprintf("pull-%d", time.Now().UnixNano())
	if status, body := giteaCall(t, g, "POST", "/user/repos", map[string]any{"name": repo, "private": true, "auto_init": true, "default_branch": "main"}); status != http.StatusCreated {
		t.Fatalf("create repository: %d %s", status, body)
	}
	repoAPI := "/repos/" + g.Admin + "/" + repo
	cloneURL := g.URL + "/" + g.Admin + "/" + repo + ".git"
	// shared.txt on Gitea's main; updateOnGitea changes it there with the file update endpoint.
	var sha string
	putFile := func(method, content, message string) {
		t.Helper()
		in := map[string]any{"content": base64.StdEncoding.EncodeToString([]byte(content)), "message": message, "branch": "main"}
		if sha != "" {
			in["sha"] = sha
		}
		status, body := giteaCall(t, g, method, repoAPI+"/contents/shared.txt", in)
		var out struct{ Content struct{ SHA string } }
		if json.Unmarshal(body, &out); (status != http.StatusCreated && status != http.StatusOK) || out.Content.SHA == "" {
			t.Fatalf("%s shared.txt on Gitea: %d %s", method, status, body)
		}
		sha = out.Content.SHA
	}
	putFile("POST", "line one\nline two\n", "Add shared.txt")
	mainAt := func() string {
		t.Helper()
		var branch struct{ Commit struct{ ID string } }
		giteaJSON(t, g, repoAPI+"/branches/main", &branch)
		return branch.Commit.ID
	}
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": g.Token}); status != http.StatusCreated {
		t.Fatalf("connect Gitea: %d %s", status, body)
	}
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"modelId": "mock-model",
		"repository": map[string]any{"url": cloneURL, "ref": "main"}})
	var created struct{ Project projectState }
	if json.Unmarshal(body, &created); status != http.StatusCreated {
		t.Fatalf("create project: %d %s", status, body)
	}
	p := created.Project
	waitStatus(t, hc, doce, p.ID, "ready", 6*time.Minute)

	// In the workspace as the agent (uid 1000), as its bash tool would.
	inWorkspace := func(script string, env ...string) string {
		t.Helper()
		args := []string{"exec", "-u", "1000:1000", "-w", "/workspace"}
		for _, e := range env {
			args = append(args, "-e", e)
		}
		out, err := exec.Command("docker", append(args, "doce-"+p.ID+"-opencode", "bash", "-c", script)...).CombinedOutput()
		if err != nil {
			t.Fatalf("in the workspace: %v\n%s", err, out)
		}
		return string(out)
	}
	// Everything but doce's own files, which stay uncommitted.
	dirty := `git status --porcelain | grep -v -e opencode.json -e AGENTS.md || true`

	// Gitea's main moves on (line two) while the workspace adds a file of its own, uncommitted.
	putFile("PUT", "line one\nline two, from Gitea\n", "Change line two on Gitea")
	inWorkspace(`printf 'the agent made this\n' > local.txt`)
	gs := pullAndWait(t, hc, doce, p.ID, map[string]any{})
	want := mainAt()
	if l := gs.LastPull; l.Status != "done" || l.Error != "" || l.Base != "main" || l.Commit != want || l.Ahead == nil || *l.Ahead != 2 || l.Behind == nil || *l.Behind != 0 {
		t.Fatalf("first pull: %+v; want main at %s, 2 ahead (the work and the merge), 0 behind", *l, want)
	}
	if out := inWorkspace(`cat shared.txt; git log -1 --format='%an %s'; git log --format=%H | grep -c -x "$MAIN"; `+dirty, "MAIN="+want); out !=
		"line one\nline two, from Gitea\nadmin Merge main of "+cloneURL+"\n1\n" {
		t.Errorf("the workspace after the pull:\n%s", out)
	}
	if out := inWorkspace(`git show --format=%s --name-only HEAD^1 | head -3`); !strings.Contains(out, "local.txt") {
		t.Errorf("the workspace's own work was not committed before the merge:\n%s", out)
	}

	// Both change line one: the pull fails naming shared.txt, and the workspace is untouched.
	putFile("PUT", "line one, from Gitea\nline two, from Gitea\n", "Change line one on Gitea")
	inWorkspace(`printf 'line one, from the workspace\nline two, from Gitea\n' > shared.txt`)
	start := time.Now()
	gs = pullAndWait(t, hc, doce, p.ID, map[string]any{"base": "main"})
	if l := gs.LastPull; l.Status != "failed" || !strings.Contains(l.Error, "changed the same lines as the project's work in: shared.txt.") || l.Ahead != nil {
		t.Errorf("conflicting pull: %+v", *l)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the conflicting pull took %s: was it retried?", d)
	}
	if out := inWorkspace(`cat shared.txt; test -e .git/MERGE_HEAD && echo MERGING; ls .git/doce-pull.bundle 2>/dev/null; ` + dirty); out != "line one, from the workspace\nline two, from Gitea\n" {
		t.Errorf("the workspace after the conflicting pull:\n%s\nwant the workspace's shared.txt, no merge under way, a clean tree", out)
	}

	// The page's Git tab shows the conflict; once the workspace takes Gitea's line one, its Pull
	// button merges (under the page's CSP: newBrowser fails on any violation).
	bctx := newBrowser(t, 1280, 900)
	run(t, bctx, "sign in",
		chromedp.Navigate(doce.URL+"/login"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitNotPresent(`#password`),
	)
	// The workbench scrolls on its own: the reason must be in its visible part, not below it
	// under "failed:", when the tab opens and again after the page is loaded anew.
	for _, step := range []string{"the Git tab shows the conflict", "the Git tab still shows it after a reload"} {
		run(t, bctx, step,
			chromedp.Navigate(doce.URL+"/projects/"+p.ID),
			chromedp.WaitVisible(`#tab-git`),
			chromedp.Click(`#tab-git`),
			chromedp.WaitVisible(`//p[@id="git-pull-error" and contains(., "project's work in: shared.txt.")]`),
		)
		inSight(t, bctx, "git-pull-error", "project's work in: shared.txt.")
	}
	screenshot(t, bctx, "40-git-pull-conflict")
	inWorkspace(`printf 'line one, from Gitea\nline two, from Gitea\n' > shared.txt`)
	run(t, bctx, "pull from the page",
		chromedp.Click(`#git-pull-button`),
		chromedp.WaitVisible(`//p[@id="git-pull-status" and starts-with(normalize-space(), "Merged main at ") and contains(., " behind.")]`),
	)
	if gs = getGit(t, hc, doce, p.ID); gs.LastPull == nil || gs.LastPull.Status != "done" || gs.LastPull.Commit != mainAt() || gs.LastPull.Behind == nil || *gs.LastPull.Behind != 0 {
		t.Errorf("after the page's pull: %+v", gs.LastPull)
	}

	// A branch Gitea does not have: refused at once, with the reason.
	gs = pullAndWait(t, hc, doce, p.ID, map[string]any{"base": "no-such-branch"})
	if l := gs.LastPull; l.Status != "failed" || !strings.Contains(l.Error, `no branch "no-such-branch"`) {
		t.Errorf("a missing branch: %+v", *l)
	}

	// The token is nowhere in the workspace, the container, the history, the answers or the log.
	out := inWorkspace(`grep -rIl -e "$TOKEN" /workspace /home /tmp 2>/dev/null && echo FILE-HAS-TOKEN; `+
		`grep -rl -e "$TOKEN" /workspace/.git 2>/dev/null && echo GIT-HAS-TOKEN; env | grep -v '^TOKEN=' | grep -c -e "$TOKEN" || true`, "TOKEN="+g.Token)
	if strings.TrimSpace(out) != "0" {
		t.Errorf("the token in the workspace:\n%s", out)
	}
	if b, err := exec.Command("docker", "inspect", "doce-"+p.ID+"-opencode").CombinedOutput(); err != nil || bytes.Contains(b, []byte(g.Token)) {
		t.Errorf("the container's configuration holds the token (%v)", err)
	}
	recordHistory(t, stack, "project-push:"+p.ID, "project_pull.json")
	if hist := workflowHistory(t, stack, "project-push:"+p.ID); strings.Contains(hist, g.Token) || !strings.Contains(hist, "no-such-branch") {
		t.Errorf("the pull's history holds the token, or is not the last pull's")
	}
	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) {
			t.Errorf("the token is in %s", where)
		}
	}
}
