package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// TestForgeConnectGitea connects a real Gitea: a wrong token, the wrong kind of forge and a
// Gitea that is not there are each a 400 naming the field to fix; the administrator's token
// connects and shows the Gitea account; a second connection is refused; disconnecting forgets
// it. The token is in no answer, no log line and no database file, only as Vault Transit
// ciphertext bound to its row.
func TestForgeConnectGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	keyName := fmt.Sprintf("forge-%d", time.Now().UnixNano())
	doce := startDoce(t, stack, "e2e-"+keyName, "DOCE_VAULT_TRANSIT_KEY="+keyName)
	hc := newClient(t)
	resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}

	// Refusals first: none of them stores anything.
	wrong := strings.Repeat("0", 40)
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": wrong})
	expectField(t, "wrong token", status, body, "token", "refused this token")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "github", "baseURL": g.URL, "token": g.Token})
	expectField(t, "a Gitea connected as GitHub Enterprise", status, body, "baseURL", "No GitHub API answered")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": "http://127.0.0.1:" + freePort(t), "token": g.Token})
	expectField(t, "nothing listening", status, body, "baseURL", "Could not reach Gitea")

	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL + "/", "token": g.Token})
	var created struct {
		Forge struct{ ID, Kind, ForgeName, BaseURL, Account, DisplayHint string }
	}
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusCreated {
		t.Fatalf("connect with the admin token: %d %s", status, body)
	}
	f := created.Forge
	if f.Account != g.Admin || f.Kind != "gitea" || f.ForgeName != "Gitea" || f.BaseURL != g.URL || f.DisplayHint != "…"+g.Token[len(g.Token)-4:] {
		t.Errorf("connected forge: %+v", f)
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": g.Token})
	if status != http.StatusConflict {
		t.Errorf("second connection: %d %s, want 409", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/forges", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"account":"`+g.Admin+`"`) {
		t.Errorf("list: %d %s", status, body)
	}
	resp, err = hc.Get(doce.URL + "/settings/forges")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(g.Admin)) || !bytes.Contains(page, []byte(g.URL)) {
		t.Errorf("forges page: %d\n%s", resp.StatusCode, page)
	}
	if _, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/audit", nil); !strings.Contains(string(body), `"action":"forge.connect"`) {
		t.Errorf("audit: %s", body)
	}

	// Stored as ciphertext bound to this row: it opens for it and for no other.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.ForgeConnectionsPage(context.Background(), "", 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("forge rows: %+v %v", rows, err)
	}
	transit, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", keyName, 2)
	if err != nil {
		t.Fatal(err)
	}
	row := rows[0]
	if pt, err := transit.Decrypt(context.Background(), row.TokenCiphertext, secrets.ForgeContext(row.UserID, row.ID)); err != nil || string(pt) != g.Token {
		t.Errorf("the stored ciphertext does not open to the token: %v", err)
	}
	if _, err := transit.Decrypt(context.Background(), row.TokenCiphertext, secrets.ForgeContext(row.UserID, store.NewID())); !errors.Is(err, secrets.ErrUndecryptable) {
		t.Errorf("the ciphertext opens for another row: %v", err)
	}

	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/forges/"+f.ID, nil); status != http.StatusNoContent {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/forges", nil); status != http.StatusOK || strings.TrimSpace(string(body)) != `{"forges":[]}` {
		t.Errorf("list after disconnecting: %d %s", status, body)
	}

	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) || strings.Contains(text, wrong) {
			t.Errorf("a token is in %s", where)
		}
	}
	for _, name := range []string{"doce.db", "doce.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(doce.DataDir, name))
		if bytes.Contains(b, []byte(g.Token)) {
			t.Errorf("the token is in %s", name)
		}
	}
}

// expectField checks an answer is a 400 about field saying msg.
func expectField(t *testing.T, what string, status int, body []byte, field, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal(body, &e)
	if status != http.StatusBadRequest || e.Error.Field != field || !strings.Contains(e.Error.Message, msg) {
		t.Errorf("%s: %d %s; want 400 on %s saying %q", what, status, body, field, msg)
	}
}

// giteaCall calls Gitea's API as its administrator.
func giteaCall(t *testing.T, g giteaEnv, method, path string, in any) (int, []byte) {
	t.Helper()
	return giteaRequest(t, g, method, path, in, func(r *http.Request) { r.Header.Set("Authorization", "token "+g.Token) })
}

// giteaBasic calls Gitea's API as its administrator with the password: Gitea manages access
// tokens only so.
func giteaBasic(t *testing.T, g giteaEnv, method, path string, in any) (int, []byte) {
	t.Helper()
	return giteaRequest(t, g, method, path, in, func(r *http.Request) { r.SetBasicAuth(g.Admin, g.Password) })
}

func giteaRequest(t *testing.T, g giteaEnv, method, path string, in any, auth func(*http.Request)) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(method, g.URL+"/api/v1"+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	auth(req)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("gitea %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestForgeImportGitea makes a project from a private repository on a real Gitea, without a
// prompt: the setup's import step clones it on doce's side with the token of the owner's Gitea
// connection, and the workspace holds the branch asked for, with an origin that carries no
// credential and no copy of the token anywhere; the setup page says what the clone received (git's
// count of objects, and their bytes). A branch that does not exist stops the setup at the import step with
// the reason, after one attempt.
func TestForgeImportGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-import-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-import-e2e")

	repo := fmt.Sprintf("app-%d", time.Now().UnixNano())
	if status, body := giteaCall(t, g, "POST", "/user/repos", map[string]any{"name": repo, "private": true, "auto_init": true, "default_branch": "main"}); status != http.StatusCreated {
		t.Fatalf("create repository: %d %s", status, body)
	}
	content := "imported from Gitea\n"
	if status, body := giteaCall(t, g, "POST", "/repos/"+g.Admin+"/"+repo+"/contents/feature.txt", map[string]any{
		"content": base64.StdEncoding.EncodeToString([]byte(content)), "message": "A file on a branch", "new_branch": "feature"}); status != http.StatusCreated {
		t.Fatalf("create file: %d %s", status, body)
	}
	cloneURL := g.URL + "/" + g.Admin + "/" + repo + ".git"

	// Without a connection to the Gitea, the private repository cannot be had.
	create := func(ref, prompt string) projectState {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "modelId": "mock-model",
			"repository": map[string]any{"url": cloneURL, "ref": ref}})
		var v struct{ Project projectState }
		if json.Unmarshal(body, &v); status != http.StatusCreated {
			t.Fatalf("create project from %s@%s: %d %s", cloneURL, ref, status, body)
		}
		return v.Project
	}
	stopped := func(p projectState, says string) {
		t.Helper()
		got := waitStatus(t, hc, doce, p.ID, "failed", 3*time.Minute)
		if got.SetupStep != "git.importRepository" || !strings.Contains(got.SetupError, says) || got.SetupAttempt != 1 {
			t.Errorf("stopped at %s (attempt %d): %q; want the import step after one attempt saying %q", got.SetupStep, got.SetupAttempt, got.SetupError, says)
		}
	}
	stopped(create("feature", "Look around."), "needs a token")

	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": g.Token})
	if status != http.StatusCreated {
		t.Fatalf("connect Gitea: %d %s", status, body)
	}
	stopped(create("no-such-branch", "Look around."), `no branch or tag "no-such-branch"`)

	// Made without a prompt: named after the repository, ready with no first message.
	p := create("feature", "")
	waitStatus(t, hc, doce, p.ID, "ready", 4*time.Minute)
	_, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID, nil)
	var got struct {
		Project struct {
			Name, Prompt string
			Import       *struct{ ReceivedObjects, TotalObjects, ReceivedBytes int64 }
		}
	}
	if json.Unmarshal(body, &got); got.Project.Name != repo || got.Project.Prompt != "" {
		t.Errorf("project made without a prompt: %s", body)
	}
	// The clone's progress, as git reported it: every object of the branch, and their bytes,
	// about the size of the pack a clone of our own receives (a file in its own commit, a README).
	var local bytes.Buffer
	dir := t.TempDir()
	clone := exec.Command("git", "-c", "http.extraHeader=Authorization: token "+g.Token, "clone", "-q", "--single-branch", "--branch", "feature", cloneURL, dir)
	clone.Stderr = &local
	if err := clone.Run(); err != nil {
		t.Fatalf("clone the branch here: %v\n%s", err, local.String())
	}
	count, _ := exec.Command("git", "-C", dir, "count-objects", "-v").Output()
	objects := 0
	for _, line := range strings.Split(string(count), "\n") {
		if n, ok := strings.CutPrefix(line, "in-pack: "); ok {
			fmt.Sscan(n, &objects)
		}
	}
	if im := got.Project.Import; im == nil || objects == 0 || im.TotalObjects != int64(objects) || im.ReceivedObjects != im.TotalObjects || im.ReceivedBytes < 100 || im.ReceivedBytes > 64<<10 {
		t.Errorf("the import's progress: %+v; want all %d objects of the branch received, some hundred bytes", im, objects)
	}

	// On a busy machine OpenCode may still be slow to answer just after the setup: 503 says so.
	waitFor(t, "feature.txt in the workspace", 2*time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/files/content?path=feature.txt", nil)
		if status == http.StatusServiceUnavailable {
			return false, fmt.Errorf("%d %s", status, body)
		}
		if status != http.StatusOK || !strings.Contains(string(body), "imported from Gitea") {
			t.Fatalf("feature.txt in the workspace: %d %s", status, body)
		}
		return true, nil
	})
	// Inside the workspace, as the agent: the branch, a clean tree, an origin without a
	// credential, and no trace of the token in files, git's configuration or the environment.
	script := `set -e; cd /workspace; git rev-parse --abbrev-ref HEAD; git remote get-url origin; git status --porcelain | grep -v -e opencode.json -e AGENTS.md || true
grep -rIl -e "$TOKEN" /workspace /home 2>/dev/null && echo TOKEN-FOUND || true; env | grep -c -e "$TOKEN" || true`
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", "-e", "TOKEN="+g.Token, "doce-"+p.ID+"-opencode", "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	// The token was handed to this exec alone (as TOKEN): the count of its lines is 1.
	if len(lines) != 3 || lines[0] != "feature" || lines[1] != cloneURL || lines[2] != "1" {
		t.Errorf("in the workspace:\n%s\nwant the branch, %s, a clean tree, no token", out, cloneURL)
	}
	if b, err := exec.Command("docker", "inspect", "doce-"+p.ID+"-opencode").CombinedOutput(); err != nil || bytes.Contains(b, []byte(g.Token)) {
		t.Errorf("the container's configuration holds the token (%v)", err)
	}
	resp, err := hc.Get(doce.URL + "/projects/" + p.ID)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte("From <code>"+cloneURL+"</code> at <code>feature</code>")) || bytes.Contains(page, []byte("data-first-prompt")) ||
		!bytes.Contains(page, []byte(fmt.Sprintf("<small data-import>— received %d objects, ", objects))) {
		t.Errorf("project page: %d\n%s", resp.StatusCode, page)
	}
	// The review of the project's changes works on the imported repository: an edit shows.
	if out, err := exec.Command("docker", "exec", "-u", "1000:1000", "doce-"+p.ID+"-opencode", "bash", "-c", "echo edited >> /workspace/feature.txt").CombinedOutput(); err != nil {
		t.Fatalf("edit: %v\n%s", err, out)
	}
	status, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/changes", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"path":"feature.txt"`) || !strings.Contains(string(body), `"base":"head"`) {
		t.Errorf("changes after an edit: %d %s", status, body)
	}
	recordHistory(t, stack, "project-setup:"+p.ID, "project_setup_import.json")

	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) {
			t.Errorf("the token is in %s", where)
		}
	}
	if _, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/audit", nil); !strings.Contains(string(body), `"action":"forge.decrypt-for-use"`) {
		t.Errorf("audit: %s", body)
	}
}
