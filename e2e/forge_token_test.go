package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestForgeTokenRevokedGitea connects a real Gitea with a token of its own, makes a project from
// a private repository with it, and revokes the token in Gitea: the next push fails at once
// naming the connection, and the connection says it needs a new token, in GET /api/v1/forges and
// on the Forges page. Replacing the token from that page (in Chromium) makes it a working
// connection again, and the push goes through. Neither token is in doce's answers or its log.
func TestForgeTokenRevokedGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-revoke-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-revoke-e2e")
	downWorkspacesAtEnd(t, doce)

	name := fmt.Sprintf("doce-revoke-%d", time.Now().UnixNano())
	status, body := giteaBasic(t, g, "POST", "/users/"+g.Admin+"/tokens", map[string]any{"name": name, "scopes": []string{"all"}})
	var tok struct{ SHA1 string }
	if json.Unmarshal(body, &tok); status != http.StatusCreated || tok.SHA1 == "" {
		t.Fatalf("create a Gitea token: %d %s", status, body)
	}
	repo := fmt.Sprintf("revoke-%d", time.Now().UnixNano())
	if status, body := giteaCall(t, g, "POST", "/user/repos", map[string]any{"name": repo, "private": true, "auto_init": true, "default_branch": "main"}); status != http.StatusCreated {
		t.Fatalf("create repository: %d %s", status, body)
	}
	cloneURL := g.URL + "/" + g.Admin + "/" + repo + ".git"
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": tok.SHA1})
	var conn struct{ Forge struct{ ID, Status string } }
	if json.Unmarshal(body, &conn); status != http.StatusCreated || conn.Forge.Status != "connected" {
		t.Fatalf("connect Gitea: %d %s", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"modelId": "mock-model",
		"repository": map[string]any{"url": cloneURL, "ref": "main"}})
	var created struct{ Project projectState }
	if json.Unmarshal(body, &created); status != http.StatusCreated {
		t.Fatalf("create project: %d %s", status, body)
	}
	p := created.Project
	waitStatus(t, hc, doce, p.ID, "ready", 6*time.Minute)
	if out, err := exec.Command("docker", "exec", "-u", "1000:1000", "-w", "/workspace", "doce-"+p.ID+"-opencode", "bash", "-c",
		"printf 'work\\n' > work.txt").CombinedOutput(); err != nil {
		t.Fatalf("change the workspace: %v\n%s", err, out)
	}

	// Revoked in Gitea: the push ends at once, naming the connection; the connection is marked.
	if status, body := giteaBasic(t, g, "DELETE", "/users/"+g.Admin+"/tokens/"+name, nil); status != http.StatusNoContent {
		t.Fatalf("revoke the Gitea token: %d %s", status, body)
	}
	start := time.Now()
	gs := pushAndWait(t, hc, doce, p.ID, map[string]any{"branch": "doce/revoked"})
	want := "Gitea at " + g.URL + " refused the token of your connection to it (account " + g.Admin + ")"
	if l := gs.LastPush; l.Status != "failed" || !strings.Contains(l.Error, want) || !strings.Contains(l.Error, "Replace the token on the Forges page") {
		t.Errorf("push with a revoked token: %+v; want it failed saying %q", *l, want)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Errorf("the refused push took %s: was it retried?", d)
	}
	forge := func() map[string]any {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/forges", nil)
		var v struct{ Forges []map[string]any }
		if json.Unmarshal(body, &v); status != http.StatusOK || len(v.Forges) != 1 {
			t.Fatalf("GET forges: %d %s", status, body)
		}
		return v.Forges[0]
	}
	if f := forge(); f["status"] != "needs-token" || f["tokenRefusedAt"] == nil {
		t.Errorf("the connection after the refusal: %v", f)
	}

	// The Forges page says so and replaces the token (under the page's CSP).
	bctx := newBrowser(t, 1280, 900)
	field := "#token-" + conn.Forge.ID
	run(t, bctx, "sign in",
		chromedp.Navigate(doce.URL+"/login"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitNotPresent(`#password`),
	)
	run(t, bctx, "the Forges page says the token needs replacing",
		chromedp.Navigate(doce.URL+"/settings/forges"),
		chromedp.WaitVisible(`//td[@data-forge-status="needs-token"]//strong[.="Needs a new token"]`),
		chromedp.WaitVisible(field),
	)
	screenshot(t, bctx, "43-forge-needs-token")
	run(t, bctx, "replace the token",
		chromedp.SendKeys(field, g.Token),
		chromedp.Click(`//form[input[@name="replace"]]//button[.="Replace token"]`),
		chromedp.WaitVisible(`//td[@data-forge-status="connected" and normalize-space()="Connected"]`),
	)
	if f := forge(); f["status"] != "connected" || f["tokenRefusedAt"] != nil || f["displayHint"] != "…"+g.Token[len(g.Token)-4:] {
		t.Errorf("the connection after replacing the token: %v", f)
	}

	// The same push now goes through.
	if gs := pushAndWait(t, hc, doce, p.ID, map[string]any{"branch": "doce/revoked"}); gs.LastPush.Status != "done" || gs.LastPush.Error != "" {
		t.Errorf("push after replacing the token: %+v", *gs.LastPush)
	}
	var branch struct{ Commit struct{ ID string } }
	giteaJSON(t, g, "/repos/"+g.Admin+"/"+repo+"/branches/doce/revoked", &branch)
	if branch.Commit.ID != getGit(t, hc, doce, p.ID).LastPush.Commit {
		t.Errorf("Gitea's doce/revoked is at %s, not the pushed commit", branch.Commit.ID)
	}
	if _, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/audit", nil); !strings.Contains(string(body), `"action":"forge.token-refused"`) || !strings.Contains(string(body), `"action":"forge.replace"`) {
		t.Errorf("audit: %s", body)
	}
	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) || strings.Contains(text, tok.SHA1) {
			t.Errorf("a token is in %s", where)
		}
	}
}
