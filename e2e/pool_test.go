package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	dockerclient "github.com/docker/docker/client"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// poolCount reads doce_workspace_pool{state} off /metrics.
func poolCount(t testing.TB, doce *doceProcess, state string) int {
	t.Helper()
	status, body := apiCall(t, newClient(t), doce.MetricsURL, "GET", "/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d", status)
	}
	m := regexp.MustCompile(`(?m)^doce_workspace_pool\{state="` + state + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics has no doce_workspace_pool{state=%q}", state)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func waitPoolFree(t testing.TB, doce *doceProcess, want int, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d free pooled workspaces", want), timeout, func() (bool, error) {
		n := poolCount(t, doce, "free")
		return n == want, fmt.Errorf("%d free, %d starting", n, poolCount(t, doce, "starting"))
	})
}

// cpuShares is the CPU share Docker gives the project's OpenCode container.
func cpuShares(t testing.TB, docker *dockerclient.Client, projectID string) int64 {
	t.Helper()
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		t.Fatal(err)
	}
	return ci.HostConfig.CPUShares
}

// pooledIDs lists the unclaimed workspaces `doce pool status` shows.
func pooledIDs(t testing.TB, doce *doceProcess) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, line := range strings.Split(doceCommand(t, doce, "pool", "status"), "\n") {
		// ID HOST STATUS IMAGE AGE ERROR
		if f := strings.Fields(line); len(f) > 2 && f[2] == store.PoolFree {
			ids[f[0]] = true
		}
	}
	return ids
}

// TestPrebuiltWorkspaces: with a pool of 2, a new project claims a started workspace (taking
// its id, so compose and teardown find it), gets its configuration and credentials and runs its
// first prompt on it; the pool refills; more projects at once than the pool holds all get
// ready, none sharing a workspace; drain empties the pool and removes its Docker objects;
// refill brings it back; deleting a claimed project leaves nothing behind.
func TestPrebuiltWorkspaces(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("pool-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_POOL=2")
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	key := "sk-pool-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	t.Cleanup(func() {
		for id := range pooledIDs(t, doce) {
			downWorkspace(id)
		}
	})

	waitPoolFree(t, doce, 2, 3*time.Minute)
	free := pooledIDs(t, doce)
	if len(free) != 2 {
		t.Fatalf("doce pool status lists %v, want 2 free", free)
	}
	// A pooled workspace waits at the smallest CPU share, so that refilling the pool takes only
	// what setups leave; its project gives it the full share.
	for id := range free {
		if got := cpuShares(t, docker, id); got != 2 {
			t.Fatalf("free pooled workspace %s has CPU shares %d, want 2", id, got)
		}
	}

	// One project: it claims a pooled workspace.
	start := time.Now()
	p := createProject(t, hc, doce, "Build a pooled thing")
	if !free[p.ID] {
		t.Fatalf("project %s did not claim one of the pooled workspaces %v", p.ID, free)
	}
	waitStatus(t, hc, doce, p.ID, "ready", time.Minute)
	t.Logf("create → ready on a prebuilt workspace: %v", time.Since(start).Round(time.Millisecond))
	assertOneOfEach(t, docker, p.ID, "Build a pooled thing")
	if got := cpuShares(t, docker, p.ID); got != 1024 {
		t.Errorf("the claimed workspace has CPU shares %d, want 1024, any workspace's", got)
	}
	// The first prompt ran on the claimed workspace, on the project's provider (its
	// configuration was written at the claim) with the user's key (PUT /auth).
	// OpenCode starts its agent loop seconds after accepting a prompt, more on a loaded machine.
	waitFor(t, "the mock LLM called with the user's key", 2*time.Minute, func() (bool, error) {
		for _, rq := range llm.requests() {
			if rq.Path == "/v1/chat/completions" && rq.Authorization == "Bearer "+key {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d requests; %s", len(llm.requests()), sessionDump(docker, p.ID))
	})
	// Compose-style tooling finds it under the project's name.
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", workspace.LabelComposeProject+"=doce-"+p.ID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("compose project doce-%s: %d containers (%v), want 1", p.ID, len(cs), err)
	}
	// The pool refills on the configuration of the latest project: the next project of the
	// same provider and model claims that workspace, whose OpenCode has it loaded already, in
	// preference to the one on the base configuration.
	waitPoolFree(t, doce, 2, 2*time.Minute)
	first := poolConfigLabel(t, docker, p.ID)
	start = time.Now()
	p2 := createProject(t, hc, doce, "Build a second pooled thing")
	waitStatus(t, hc, doce, p2.ID, "ready", time.Minute)
	t.Logf("create → ready on a prebuilt workspace on the project's configuration: %v", time.Since(start).Round(time.Millisecond))
	if second := poolConfigLabel(t, docker, p2.ID); second == first {
		t.Fatalf("project 2 claimed a workspace on the base configuration (%s) while one on its own was free", second)
	}
	waitFor(t, "the mock LLM asked the second project's prompt with the user's key", 2*time.Minute, func() (bool, error) {
		for _, rq := range llm.requests() {
			if rq.Authorization == "Bearer "+key && strings.Contains(rq.Body, "Build a second pooled thing") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d requests; %s", len(llm.requests()), sessionDump(docker, p2.ID))
	})
	waitPoolFree(t, doce, 2, 2*time.Minute) // refilled

	// Five at once against a pool of two: two claim, three start cold, all ready, distinct.
	free = pooledIDs(t, doce)
	ids := make(chan string, 5)
	for i := range 5 {
		go func() { ids <- createProject(t, hc, doce, fmt.Sprintf("Concurrent pooled %d", i)).ID }()
	}
	seen, claimed := map[string]bool{}, 0
	for range 5 {
		id := <-ids
		if seen[id] {
			t.Fatalf("two projects share id %s", id)
		}
		seen[id] = true
		if free[id] {
			claimed++
		}
	}
	if claimed != 2 {
		t.Fatalf("%d of 5 projects claimed a pooled workspace, want 2", claimed)
	}
	for id := range seen {
		waitStatus(t, hc, doce, id, "ready", 3*time.Minute)
	}

	// Drain: the pool empties and its workspaces' Docker objects go.
	waitPoolFree(t, doce, 2, 2*time.Minute)
	drained := pooledIDs(t, doce)
	doceCommand(t, doce, "pool", "drain")
	waitPoolFree(t, doce, 0, time.Minute)
	for id := range drained {
		assertNoDockerObjects(t, id)
	}
	doceCommand(t, doce, "pool", "refill")
	waitPoolFree(t, doce, 2, 3*time.Minute)

	// Deleting the claimed project removes everything it took over.
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+p.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitFor(t, "the claimed workspace removed", time.Minute, func() (bool, error) {
		cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+p.ID))})
		return err == nil && len(cs) == 0, fmt.Errorf("%d containers", len(cs))
	})
	assertNoDockerObjects(t, p.ID)
}

// poolConfigLabel is the configuration sum a claimed workspace's container was started on.
func poolConfigLabel(t *testing.T, docker *dockerclient.Client, projectID string) string {
	t.Helper()
	c, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		t.Fatal(err)
	}
	sum := c.Config.Labels[workspace.LabelPoolConfig]
	if sum == "" {
		t.Fatalf("project %s's container has no %s label: not a prebuilt workspace", projectID, workspace.LabelPoolConfig)
	}
	return sum
}

func assertNoDockerObjects(t *testing.T, projectID string) {
	t.Helper()
	docker := dockerClient(t)
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))
	waitFor(t, "no Docker objects of "+projectID, time.Minute, func() (bool, error) {
		cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
		ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: f})
		return len(cs)+len(vs.Volumes)+len(ns) == 0, fmt.Errorf("%d containers, %d volumes, %d networks", len(cs), len(vs.Volumes), len(ns))
	})
}

// TestPrebuiltFirstAnswer: a claimed prebuilt workspace answers its project's first prompt as
// a cold one would. The first project claims the pool's workspace on the base configuration
// (its setup writes the project's configuration and OpenCode loads it again); the second
// claims one started on the project's configuration, whose OpenCode loaded its instance before
// the claim. Both first prompts reach the mock LLM with the project's model, the user's key
// (no request goes without it) and the same tools and system prompt, and both answers come
// back to the project.
func TestPrebuiltFirstAnswer(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("first-answer-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_POOL=1")
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	key := "sk-first-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	t.Cleanup(func() {
		for id := range pooledIDs(t, doce) {
			downWorkspace(id)
		}
	})

	// firstTurn creates a project on a free pooled workspace and returns the agent's first
	// request to the LLM, once the answer is back.
	firstTurn := func(prompt string) (string, agentRequest) {
		t.Helper()
		// A pooled workspace starts at the smallest CPU share: on a busy machine that is slow.
		waitPoolFree(t, doce, 1, 6*time.Minute)
		free := pooledIDs(t, doce)
		p := createProject(t, hc, doce, prompt)
		if !free[p.ID] {
			t.Fatalf("project %s did not claim the pooled workspace %v", p.ID, free)
		}
		waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
		waitAnswer(t, hc, doce.URL, p.ID, "Hello from the mock.")
		rq, ok := llm.completionWith(prompt, true)
		if !ok {
			t.Fatalf("the mock saw no agent turn for %q", prompt)
		}
		return p.ID, parseAgentRequest(t, rq)
	}
	base, onBase := firstTurn("First answer, base configuration")
	own, onOwn := firstTurn("First answer, own configuration")
	if a, b := poolConfigLabel(t, docker, base), poolConfigLabel(t, docker, own); a == b {
		t.Fatalf("both projects claimed a workspace on configuration %s; the second should have had its own", a)
	}
	for _, rq := range llm.requests() {
		if rq.Path == "/v1/chat/completions" && rq.Authorization != "Bearer "+key {
			t.Errorf("a completion reached the LLM with Authorization %q, not the user's key", rq.Authorization)
		}
	}
	for name, got := range map[string]agentRequest{"base": onBase, "own": onOwn} {
		if got.Model != "mock-model" {
			t.Errorf("the %s-configuration project's first turn asked model %q, want mock-model", name, got.Model)
		}
	}
	if !slices.Equal(onBase.Tools, onOwn.Tools) {
		t.Errorf("the preloaded workspace offered tools %v, the reloaded one %v", onOwn.Tools, onBase.Tools)
	}
	if onBase.System != onOwn.System {
		t.Errorf("the preloaded workspace's system prompt differs from the reloaded one's:\n%s\n---\n%s", onOwn.System, onBase.System)
	}
	if len(onOwn.Tools) == 0 || onOwn.System == "" {
		t.Fatalf("the first turn offered no tools (%v) or no system prompt", onOwn.Tools)
	}
}

// agentRequest is what an agent's chat completion asked for.
type agentRequest struct {
	Model  string
	Tools  []string // function names, sorted
	System string
}

func parseAgentRequest(t *testing.T, rq llmRequest) agentRequest {
	t.Helper()
	var body struct {
		Model string `json:"model"`
		Tools []struct {
			Function struct{ Name string } `json:"function"`
		} `json:"tools"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(rq.Body), &body); err != nil {
		t.Fatalf("the agent's request: %v", err)
	}
	out := agentRequest{Model: body.Model}
	for _, tool := range body.Tools {
		out.Tools = append(out.Tools, tool.Function.Name)
	}
	slices.Sort(out.Tools)
	for _, m := range body.Messages {
		if m.Role == "system" {
			out.System += string(m.Content)
		}
	}
	return out
}
