package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// gitState is GET /api/v1/projects/{id}/git.
type gitState struct {
	Repository, Ref, Branch string
	PullRequest             *struct {
		URL    string
		Number int64
	}
	LastPush *struct {
		Status, Error, Commit string
		At                    time.Time
	}
	LastPull *struct {
		Status, Error, Base, Commit string
		At                          time.Time
		Ahead, Behind               *int
	}
}

func getGit(t *testing.T, hc *recordingClient, doce *doceProcess, id string) gitState {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id+"/git", nil)
	var v struct{ Git gitState }
	if err := json.Unmarshal(body, &v); err != nil || status != http.StatusOK {
		t.Fatalf("GET git: %d %s", status, body)
	}
	return v.Git
}

// pushAndWait asks for a push and waits until it has ended, returning how.
func pushAndWait(t *testing.T, hc *recordingClient, doce *doceProcess, id string, in map[string]any) gitState {
	t.Helper()
	return gitRunAndWait(t, hc, doce, id, "push", in, func(g gitState) (string, time.Time, any) {
		if g.LastPush == nil {
			return "", time.Time{}, nil
		}
		return g.LastPush.Status, g.LastPush.At, g.LastPush
	})
}

// gitRunAndWait asks for a push or a pull (op) and waits until the run it started has ended;
// last reads that run's status, start and whole record (nil: none) from the project's Git state.
func gitRunAndWait(t *testing.T, hc *recordingClient, doce *doceProcess, id, op string, in map[string]any,
	last func(gitState) (status string, at time.Time, run any)) gitState {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+id+"/git/"+op, in)
	var v struct{ Git gitState }
	var st string
	var started time.Time
	var run any
	if json.Unmarshal(body, &v) == nil {
		st, started, run = last(v.Git)
	}
	if status != http.StatusAccepted || run == nil || st != "running" {
		t.Fatalf("%s %v: %d %s", op, in, status, body)
	}
	var g gitState
	waitFor(t, "the "+op+" to end", 4*time.Minute, func() (bool, error) {
		g = getGit(t, hc, doce, id)
		st, at, run := last(g)
		if run == nil || !at.Equal(started) {
			t.Fatalf("the %s recorded is not the one started at %s: %+v", op, started, run)
		}
		return st != "running", fmt.Errorf("%+v", run)
	})
	return g
}

// giteaJSON calls Gitea's API as its administrator and decodes a 200 answer into out.
func giteaJSON(t *testing.T, g giteaEnv, path string, out any) {
	t.Helper()
	status, body := giteaCall(t, g, "GET", path, nil)
	if status != http.StatusOK {
		t.Fatalf("gitea GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("gitea GET %s: %v", path, err)
	}
}

// TestForgePushGitea makes a project from a private repository on a real Gitea, lets the agent
// (the mock LLM's bash tool calls) write a file, and pushes the work to a branch with a pull
// request: the pull request is on Gitea with the change and the owner as author, and doce's own
// opencode.json stays out. After another change a second push updates the same pull request.
// The project page's Git tab shows it, lists the work not committed yet with its line counts,
// and pushes it to another branch with a pull request of its own. A base branch that does not exist and a protected branch end the push failed with the reason,
// at once. The forge token is nowhere in the workspace (files, environment, .git/config), in
// the container's configuration, in the push's workflow history, in doce's answers or its log.
func TestForgePushGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-push-%d", time.Now().UnixNano()))
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": "sk-push-e2e", "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect the mock LLM: %d %s", status, body)
	}
	downWorkspacesAtEnd(t, doce)

	repo := fmt.Sprintf("push-%d", time.Now().UnixNano())
	if status, body := giteaCall(t, g, "POST", "/user/repos", map[string]any{"name": repo, "private": true, "auto_init": true, "default_branch": "main"}); status != http.StatusCreated {
		t.Fatalf("create repository: %d %s", status, body)
	}
	repoAPI := "/repos/" + g.Admin + "/" + repo
	cloneURL := g.URL + "/" + g.Admin + "/" + repo + ".git"
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": g.Token}); status != http.StatusCreated {
		t.Fatalf("connect Gitea: %d %s", status, body)
	}

	bash := func(command string) mockReply {
		return mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{"command": command, "description": "Write the file"}}}}
	}
	llm.script("WRITE-PUSHED-FILE", bash("cd /workspace && printf 'first line\\n' > pushed.txt"), mockReply{Chunks: []string{"Wrote pushed.txt."}})
	llm.script("CHANGE-PUSHED-FILE", bash("cd /workspace && printf 'second line\\n' >> pushed.txt"), mockReply{Chunks: []string{"Changed pushed.txt."}})

	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": "WRITE-PUSHED-FILE: start the project.", "modelId": "mock-model",
		"repository": map[string]any{"url": cloneURL, "ref": "main"}})
	var created struct{ Project projectState }
	if json.Unmarshal(body, &created); status != http.StatusCreated {
		t.Fatalf("create project: %d %s", status, body)
	}
	p := created.Project
	waitStatus(t, hc, doce, p.ID, "ready", 6*time.Minute)
	// Read in the workspace, not through OpenCode, which a loaded machine can make slow to answer.
	fileIs := func(want string) {
		t.Helper()
		waitFor(t, "the agent to write pushed.txt", 4*time.Minute, func() (bool, error) {
			out, err := exec.Command("docker", "exec", "-u", "1000:1000", "doce-"+p.ID+"-opencode", "cat", "/workspace/pushed.txt").CombinedOutput()
			return err == nil && string(out) == want, fmt.Errorf("%w: %q", err, out)
		})
	}
	fileIs("first line\n")

	// Before any push: the repository, and doce's branch named after the project (its slug).
	if gs := getGit(t, hc, doce, p.ID); gs.Repository != cloneURL || gs.Ref != "main" || gs.Branch != "doce/write-pushed-file-start-the-project" || gs.LastPush != nil || gs.PullRequest != nil {
		t.Errorf("git before a push: %+v", gs)
	}

	// First push, with a pull request.
	gs := pushAndWait(t, hc, doce, p.ID, map[string]any{"branch": "doce/change", "message": "Add pushed.txt",
		"pullRequest": map[string]any{"title": "Pushed from doce", "body": "Made by the agent."}})
	if gs.LastPush.Status != "done" || gs.PullRequest == nil || gs.PullRequest.Number == 0 || gs.Branch != "doce/change" {
		t.Fatalf("first push: %+v %+v", gs.LastPush, gs.PullRequest)
	}
	number, firstCommit := gs.PullRequest.Number, gs.LastPush.Commit
	if want := fmt.Sprintf("%s/%s/%s/pulls/%d", g.URL, g.Admin, repo, number); gs.PullRequest.URL != want {
		t.Errorf("pull request URL %s, want %s", gs.PullRequest.URL, want)
	}
	type pull struct {
		Number int64
		State  string
		Title  string
		Body   string
		Head   struct{ Ref, Sha string }
		Base   struct{ Ref string }
	}
	var pr pull
	giteaJSON(t, g, fmt.Sprintf("%s/pulls/%d", repoAPI, number), &pr)
	if pr.State != "open" || pr.Title != "Pushed from doce" || pr.Body != "Made by the agent." || pr.Head.Ref != "doce/change" || pr.Base.Ref != "main" || pr.Head.Sha != firstCommit {
		t.Errorf("the pull request on Gitea: %+v, want head doce/change at %s into main", pr, firstCommit)
	}
	fileAt := func(path, ref string) (int, string) {
		t.Helper()
		status, body := giteaCall(t, g, "GET", repoAPI+"/contents/"+path+"?ref="+ref, nil)
		var c struct{ Content string }
		json.Unmarshal(body, &c)
		b, _ := base64.StdEncoding.DecodeString(c.Content)
		return status, string(b)
	}
	if status, content := fileAt("pushed.txt", "doce/change"); status != http.StatusOK || content != "first line\n" {
		t.Errorf("pushed.txt on doce/change: %d %q", status, content)
	}
	if status, _ := fileAt("opencode.json", "doce/change"); status != http.StatusNotFound {
		t.Errorf("doce's opencode.json was pushed: %d", status)
	}
	var commits []struct {
		SHA    string
		Commit struct {
			Message string
			Author  struct{ Name, Email string }
		}
	}
	giteaJSON(t, g, repoAPI+"/commits?sha=doce/change&limit=1", &commits)
	if len(commits) != 1 || commits[0].SHA != firstCommit || commits[0].Commit.Author.Name != "admin" ||
		commits[0].Commit.Author.Email != "admin@doce.invalid" || strings.TrimSpace(commits[0].Commit.Message) != "Add pushed.txt" {
		t.Errorf("the pushed commit: %+v", commits)
	}

	// Another change, pushed to the same branch (the default now): the same pull request.
	send(t, hc, doce.URL, p.ID, "CHANGE-PUSHED-FILE: once more.")
	fileIs("first line\nsecond line\n")
	gs = pushAndWait(t, hc, doce, p.ID, map[string]any{"message": "Extend pushed.txt", "pullRequest": map[string]any{"title": "Pushed again"}})
	if gs.LastPush.Status != "done" || gs.PullRequest == nil || gs.PullRequest.Number != number || gs.Branch != "doce/change" || gs.LastPush.Commit == firstCommit {
		t.Fatalf("second push: %+v %+v, want pull request #%d updated", gs.LastPush, gs.PullRequest, number)
	}
	giteaJSON(t, g, fmt.Sprintf("%s/pulls/%d", repoAPI, number), &pr)
	if pr.State != "open" || pr.Head.Sha != gs.LastPush.Commit {
		t.Errorf("the pull request after the second push: %+v, want its head at %s", pr, gs.LastPush.Commit)
	}
	if status, content := fileAt("pushed.txt", "doce/change"); status != http.StatusOK || content != "first line\nsecond line\n" {
		t.Errorf("pushed.txt after the second push: %d %q", status, content)
	}
	var open []pull
	giteaJSON(t, g, repoAPI+"/pulls?state=open", &open)
	if len(open) != 1 {
		t.Errorf("%d open pull requests, want 1: %+v", len(open), open)
	}
	recordHistory(t, stack, "project-push:"+p.ID, "project_push.json")
	if hist := workflowHistory(t, stack, "project-push:"+p.ID); strings.Contains(hist, g.Token) || !strings.Contains(hist, "Extend pushed.txt") {
		t.Errorf("the push's history holds the token, or is not the second push's")
	}

	// Work not committed yet (as the agent's user): the Git tab lists it, without doce's own
	// files, as does GET /changes?base=head; the page's push commits it and the list empties.
	if out, err := exec.Command("docker", "exec", "-u", "1000:1000", "-w", "/workspace", "doce-"+p.ID+"-opencode", "bash", "-c",
		"printf 'third line\n' >> pushed.txt && printf 'one\ntwo\n' > notes.txt").CombinedOutput(); err != nil {
		t.Fatalf("change the workspace: %v\n%s", err, out)
	}
	from, files := getChanges(t, hc, doce.URL, "/api/v1/projects/"+p.ID+"/changes?base=head")
	if f, n := fileIn(files, "pushed.txt"), fileIn(files, "notes.txt"); from != "head" || len(files) != 2 || f == nil || f.Status != "modified" || f.Additions != 1 ||
		n == nil || n.Status != "added" || n.Additions != 2 {
		t.Errorf("changes not committed yet (base %q): %+v; want pushed.txt +1 and notes.txt +2 alone", from, files)
	}
	if status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/changes?base=nope", nil); status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"base"`) {
		t.Errorf("changes?base=nope: %d %s, want 400 on base", status, body)
	}

	// The page's Git tab shows the pull request, and pushes the work to another branch with a
	// pull request of its own (under the page's CSP: newBrowser fails on any violation).
	bctx := newBrowser(t, 1280, 900)
	run(t, bctx, "sign in",
		chromedp.Navigate(doce.URL+"/login"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitNotPresent(`#password`),
	)
	var shownBranch string
	run(t, bctx, "open the Git tab",
		chromedp.Navigate(doce.URL+"/projects/"+p.ID),
		chromedp.WaitVisible(`#tab-git`),
		chromedp.Click(`#tab-git`),
		chromedp.WaitVisible(fmt.Sprintf(`//a[@id="git-pr-url" and normalize-space()="#%d on doce/change"]`, number)),
		chromedp.Value(`#git-branch`, &shownBranch),
		chromedp.WaitVisible(`//p[@id="git-changes-status" and starts-with(normalize-space(), "2 files changed since the last commit, +3 −0 lines.")]`),
		chromedp.WaitVisible(`//ul[@id="git-changes"]/li[span[@class="badge" and .="modified"] and button[.="pushed.txt"] and span[@class="count" and normalize-space()="+1 −0"]]`),
		chromedp.WaitVisible(`//ul[@id="git-changes"]/li[span[@class="badge" and .="added"] and button[.="notes.txt"] and span[@class="count" and normalize-space()="+2 −0"]]`),
	)
	if shownBranch != "doce/change" {
		t.Errorf("the Git tab's branch is %q, want doce/change", shownBranch)
	}
	var listed int
	run(t, bctx, "count the changed files", chromedp.Evaluate(`document.querySelectorAll("#git-changes li").length`, &listed))
	if listed != 2 {
		t.Errorf("the Git tab lists %d changed files, want 2 (doce's own files left out)", listed)
	}
	screenshot(t, bctx, "42-git-changes")
	run(t, bctx, "open a changed file in Review",
		chromedp.Click(`//ul[@id="git-changes"]//button[.="notes.txt"]`),
		chromedp.WaitVisible(`//h3[@id="review-path" and .="notes.txt"]`),
		chromedp.WaitVisible(`//pre[@id="review-patch"]/span[@class="add" and .="+two"]`),
		chromedp.Click(`#tab-git`),
	)
	run(t, bctx, "push from the page",
		chromedp.SetValue(`#git-branch`, "doce/from-page"),
		chromedp.SendKeys(`#git-title`, "From the page"),
		chromedp.Click(`#git-push-button`),
		chromedp.WaitVisible(`//p[@id="git-status" and starts-with(normalize-space(), "Pushed ") and contains(., "to doce/from-page")]`),
		chromedp.WaitVisible(`//a[@id="git-pr-url" and contains(normalize-space(), "on doce/from-page")]`),
		chromedp.WaitVisible(`//p[@id="git-changes-status" and normalize-space()="No changes since the last commit."]`),
	)
	screenshot(t, bctx, "41-git-pushed")
	gs = getGit(t, hc, doce, p.ID)
	if gs.Branch != "doce/from-page" || gs.LastPush == nil || gs.LastPush.Status != "done" || gs.PullRequest == nil || gs.PullRequest.Number == number {
		t.Fatalf("after the page's push: %+v", gs)
	}
	giteaJSON(t, g, fmt.Sprintf("%s/pulls/%d", repoAPI, gs.PullRequest.Number), &pr)
	if pr.State != "open" || pr.Title != "From the page" || pr.Head.Ref != "doce/from-page" || pr.Base.Ref != "main" {
		t.Errorf("the page's pull request on Gitea: %+v", pr)
	}

	// What a person has to fix ends the push at once, with the reason.
	start := time.Now()
	gs = pushAndWait(t, hc, doce, p.ID, map[string]any{"branch": "doce/other", "pullRequest": map[string]any{"base": "no-such-base"}})
	if gs.LastPush.Status != "failed" || !strings.Contains(gs.LastPush.Error, `no branch "no-such-base"`) || gs.PullRequest != nil {
		t.Errorf("a missing base: %+v", gs.LastPush)
	}
	if status, body := giteaCall(t, g, "POST", repoAPI+"/branch_protections", map[string]any{"branch_name": "main", "enable_push": false}); status != http.StatusCreated {
		t.Fatalf("protect main: %d %s", status, body)
	}
	gs = pushAndWait(t, hc, doce, p.ID, map[string]any{"branch": "main", "message": "Straight to main"})
	if gs.LastPush.Status != "failed" || !strings.Contains(gs.LastPush.Error, "refused the push to main") {
		t.Errorf("a protected branch: %+v", gs.LastPush)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the refused pushes took %s: were they retried?", d)
	}
	var branch struct{ Commit struct{ ID string } }
	giteaJSON(t, g, repoAPI+"/branches/main", &branch)
	if branch.Commit.ID == gs.LastPush.Commit || branch.Commit.ID == firstCommit {
		t.Errorf("main moved to the workspace's work: %s", branch.Commit.ID)
	}

	// The token is nowhere in the workspace: its files, the agent's environment, git's config.
	script := `grep -rIl -e "$TOKEN" /workspace /home /tmp 2>/dev/null | grep -v '^$' && echo FILE-HAS-TOKEN; ` +
		`env | grep -v '^TOKEN=' | grep -c -e "$TOKEN"; cat /workspace/.git/config; git -C /workspace log --format=%H -1`
	out, _ := exec.Command("docker", "exec", "-u", "1000:1000", "-e", "TOKEN="+g.Token, "doce-"+p.ID+"-opencode", "bash", "-c", script).CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if strings.Contains(string(out), "FILE-HAS-TOKEN") || len(lines) < 2 || lines[0] != "0" || strings.Contains(strings.Join(lines[1:], "\n"), g.Token) ||
		!strings.Contains(string(out), "url = "+cloneURL) || lines[len(lines)-1] != gs.LastPush.Commit {
		t.Errorf("in the workspace:\n%s\nwant no token, origin %s, HEAD at the pushed commit", out, cloneURL)
	}
	// The agent's own processes (OpenCode's environment) hold no token either.
	if b, err := exec.Command("docker", "inspect", "doce-"+p.ID+"-opencode").CombinedOutput(); err != nil || bytes.Contains(b, []byte(g.Token)) {
		t.Errorf("the container's configuration holds the token (%v)", err)
	}
	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) {
			t.Errorf("the token is in %s", where)
		}
	}
}
