package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/doce-dev/doce/workspace"
)

// execIn runs cmd in the project's workspace as the agent's user (uid 1000), as the agent's
// own commands would, and fails the test unless it exits 0.
func execIn(t *testing.T, docker *dockerclient.Client, projectID string, cmd ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers of %s: %d %v", projectID, len(cs), err)
	}
	ex, err := docker.ContainerExecCreate(ctx, cs[0].ID, container.ExecOptions{Cmd: cmd, User: "1000", WorkingDir: "/workspace", AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := docker.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(att.Reader)
	att.Close()
	in, err := docker.ContainerExecInspect(ctx, ex.ID)
	if err != nil || in.ExitCode != 0 {
		t.Fatalf("%v in the workspace: exit %d %v\n%s", cmd, in.ExitCode, err, out)
	}
}

// TestFileViewerBoundsAndSymlinks: the file viewer shows a file inside the workspace, only the
// beginning of a large one (doce reads at most what it shows), and refuses what symlinks made
// by the agent point at outside /workspace — OpenCode's own auth.json, holding the provider
// key, and /etc/passwd — without showing a byte of them; the workspace and its key are as
// they were afterwards.
func TestFileViewerBoundsAndSymlinks(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-files-%d", time.Now().UnixNano()))
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	key := fmt.Sprintf("sk-files-%d", time.Now().UnixNano())
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	p := createProject(t, hc, doce, "A project with files to view.")
	waitStatus(t, hc, doce, p.ID, "ready", 8*time.Minute)
	// OpenCode answers file requests once the first prompt's turn is over.
	waitAnswer(t, hc, doce.URL, p.ID, "Hello from the mock.")
	docker := dockerClient(t)
	if e, ok := workspaceAuth(t, docker, p.ID, "custom"); !ok || e.Type != "api" {
		t.Fatalf("the key is not in the workspace: %+v", e)
	}

	// What the agent could make: a small file, a 3 MB one, and symlinks leaving /workspace.
	execIn(t, docker, p.ID, "sh", "-c", `printf 'hello\n' > small.txt &&
		seq 1 400000 | sed 's/^/line /' > big.txt &&
		ln -s `+workspace.AuthFile+` leak-auth.json && ln -s /etc/passwd leak-passwd && ln -s /home/agent leak-home`)

	type view struct {
		File struct {
			Type, Content string
			Truncated     bool
		}
	}
	get := func(path string) (int, string, view) {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID+"/files/content?path="+url.QueryEscape(path), nil)
		var v view
		json.Unmarshal(body, &v)
		return status, string(body), v
	}
	if status, body, v := get("small.txt"); status != http.StatusOK || strings.TrimSpace(v.File.Content) != "hello" || v.File.Truncated {
		t.Fatalf("small.txt: %d %.300s", status, body)
	}
	status, body, v := get("big.txt")
	if status != http.StatusOK || !v.File.Truncated || len(body) > 1300<<10 || len(v.File.Content) > 1<<20 || !strings.HasPrefix(v.File.Content, "line 1\nline 2\n") {
		t.Fatalf("big.txt: %d, %d bytes answered, truncated %v, %d bytes of content", status, len(body), v.File.Truncated, len(v.File.Content))
	}
	lines := strings.Split(v.File.Content, "\n")
	if n := len(lines); n < 50000 || lines[n-2] != fmt.Sprintf("line %d", n-1) {
		t.Errorf("big.txt: %d lines shown, not the file's beginning line by line (last whole line %q)", n-1, lines[n-2])
	}
	for _, path := range []string{"leak-auth.json", "leak-passwd", "leak-home/.local/share/opencode/auth.json"} {
		status, body, _ := get(path)
		if status != http.StatusNotFound || strings.Contains(body, key) || strings.Contains(body, "root:x:0") {
			t.Errorf("%s: %d %.300s, want 404 without the file", path, status, body)
		}
	}
	if strings.Contains(hc.responses(), key) {
		t.Error("a response held the provider key")
	}
	// Nothing changed: the project is ready, its files and the key in place.
	if st := getProject(t, hc, doce, p.ID); st.Status != "ready" {
		t.Errorf("project %s after the refusals", st.Status)
	}
	if status, _, v := get("small.txt"); status != http.StatusOK || strings.TrimSpace(v.File.Content) != "hello" {
		t.Errorf("small.txt afterwards: %d", status)
	}
	if e, ok := workspaceAuth(t, docker, p.ID, "custom"); !ok || e.Type != "api" {
		t.Errorf("the key is gone from the workspace: %+v", e)
	}
}
