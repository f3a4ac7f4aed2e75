package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dockerclient "github.com/docker/docker/client"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// containsIn reports whether the file at path holds key, reading it in pieces that overlap by
// len(key)-1 bytes, so a key split across two reads is found too.
func containsIn(path string, key []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	keep := 0
	for {
		n, err := f.Read(buf[keep:])
		total := keep + n
		if bytes.Contains(buf[:total], key) {
			return true, nil
		}
		if err == io.EOF {
			return false, nil
		} else if err != nil {
			return false, err
		}
		keep = min(len(key)-1, total)
		copy(buf, buf[total-keep:total])
	}
}

// filesHolding walks the workspace container's whole file tree as its processes see it —
// image, writable layer, volumes and tmpfs — from the host, through /proc/<pid>/root of its
// first process, and lists the files that hold key. Symbolic links are not followed.
func filesHolding(t *testing.T, pid int, key string) []string {
	t.Helper()
	// The trailing slash: /proc/<pid>/root is a link, which WalkDir would not enter.
	root := fmt.Sprintf("/proc/%d/root/", pid)
	var found []string
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		rel := "/" + strings.TrimPrefix(path, root)
		if err != nil {
			t.Errorf("unable to read %s in the workspace: %v", rel, err)
			return nil
		}
		if d.IsDir() && (rel == "/proc" || rel == "/sys" || rel == "/dev") {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		has, err := containsIn(path, []byte(key))
		if err != nil {
			t.Errorf("unable to read %s in the workspace: %v", rel, err)
		} else if has {
			found = append(found, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 1000 {
		t.Fatalf("only %d files in the workspace's tree: the walk did not see it", files)
	}
	return found
}

// assertKeyNowhereIn looks for the key's bytes in the workspace of projectID: each file its
// container sees (image, writable layer, volumes, tmpfs), every process's environment and
// command line, docker inspect, OpenCode's auth.json and its provider configuration. It reads
// from the host, as root: a workspace drops every capability, and no exec into it could read
// what its agent cannot.
func assertKeyNowhereIn(t *testing.T, docker *dockerclient.Client, projectID, key string) {
	t.Helper()
	id := "doce-" + projectID + "-opencode"
	ci, err := docker.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if found := filesHolding(t, ci.State.Pid, key); len(found) > 0 {
		t.Errorf("the key is in the workspace's files %v", found)
	}
	// Every process's environment and command line, read from the host.
	top, err := docker.ContainerTop(context.Background(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	pidCol := slices.Index(top.Titles, "PID")
	for _, proc := range top.Processes {
		for _, f := range []string{"environ", "cmdline"} {
			b, err := os.ReadFile("/proc/" + proc[pidCol] + "/" + f)
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // a process may end meanwhile
				t.Errorf("unable to read the %s of workspace process %s: %v", f, proc[pidCol], err)
			}
			if bytes.Contains(b, []byte(key)) {
				t.Errorf("the key is in the %s of workspace process %s", f, strings.Join(proc, " "))
			}
		}
	}
	assertNoSecretInInspect(t, ci, key)
	authJSON := string(readContainerFile(t, docker, id, workspace.AuthFile))
	if strings.Contains(authJSON, key) || !strings.Contains(authJSON, store.GatewayTokenPrefix) {
		t.Errorf("auth.json holds the key, or no gateway token")
	}
	var providers json.RawMessage
	openCodeOf(t, ci).get(t, "/config/providers", &providers)
	if bytes.Contains(providers, []byte(key)) {
		t.Error("OpenCode's provider configuration holds the key")
	}
}

// usageRows asks the usage API.
func usageOf(t *testing.T, hc *recordingClient, base, groupBy string) []struct {
	ProjectID, ProviderID, ModelID, Day              string
	InputTokens, OutputTokens, CacheTokens, Requests int64
	Cost                                             float64
} {
	t.Helper()
	status, body := apiCall(t, hc, base, "GET", "/api/v1/usage?groupBy="+groupBy, nil)
	if status != http.StatusOK {
		t.Fatalf("GET usage: %d %s", status, body)
	}
	var v struct {
		Rows []struct {
			ProjectID, ProviderID, ModelID, Day              string
			InputTokens, OutputTokens, CacheTokens, Requests int64
			Cost                                             float64
		}
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Rows
}

// completionsWith counts the mock's chat completions carrying Authorization auth, and reports
// whether every completion carried one of the keys.
func completionsWith(llm *mockLLM, auth string) int {
	n := 0
	for _, r := range llm.requests() {
		if r.Path == "/v1/chat/completions" && r.Authorization == auth {
			n++
		}
	}
	return n
}

// TestGatewayKeepsKeysOutOfWorkspaces runs two projects through the LLM gateway: one on a
// custom OpenAI-compatible provider, one on OpenRouter (whose models carry prices in OpenCode's
// catalog), both served by the mock LLM. The mock sees the real keys on every call while no
// byte of either key is anywhere in the workspaces; usage is recorded with the mock's token
// counts and priced; a budget below what was spent stops the conversation with the budget's
// message, and raising it lets it go on; one project's token reaches no other connection.
func TestGatewayKeepsKeysOutOfWorkspaces(t *testing.T) {
	stack := requireStack(t)
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	llm := startMockLLM(t, hostGatewayIP(t))
	mockBase := "http://host.docker.internal:" + llm.port() + "/v1"
	doce := startDoce(t, stack, fmt.Sprintf("e2e-gateway-%d", time.Now().UnixNano()), "DOCE_PROVIDER_BASE_URLS=openrouter="+mockBase)
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	customKey := "sk-gw-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	routerKey := "sk-or-gw-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	for _, in := range []map[string]any{
		{"providerId": "custom", "apiKey": customKey, "baseURL": mockBase, "models": "mock-model"},
		{"providerId": "openrouter", "apiKey": routerKey},
	} {
		if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", in); status != http.StatusCreated {
			t.Fatalf("connect %s: %d %s", in["providerId"], status, body)
		}
	}

	// 1. After setup and one exchanged message, the key is nowhere in the workspace, while the
	// mock saw it on every call.
	a := createProjectOn(t, hc, doce, "custom", "mock-model", "Gateway prompt: say hello.")
	waitStatus(t, hc, doce, a.ID, "ready", 8*time.Minute)
	waitAnswer(t, hc, doce.URL, a.ID, "Hello from the mock.")
	llm.script("Second gateway message", mockReply{Chunks: []string{"Second answer through the gateway."}})
	send(t, hc, doce.URL, a.ID, "Second gateway message.")
	waitAnswer(t, hc, doce.URL, a.ID, "Second answer through the gateway.")
	assertKeyNowhereIn(t, docker, a.ID, customKey)
	calls := completionsWith(llm, "Bearer "+customKey)
	for _, r := range llm.requests() {
		if r.Path == "/v1/chat/completions" && r.Authorization != "Bearer "+customKey {
			t.Errorf("a completion carried %q, want the user's key", r.Authorization)
		}
	}
	if calls < 2 {
		t.Fatalf("the mock saw %d completions with the key, want at least the two messages'", calls)
	}

	// 2. Usage: a row per request with the mock's counts (10 in, 5 out), summed by the API.
	var rows []struct {
		ProjectID, ProviderID, ModelID, Day              string
		InputTokens, OutputTokens, CacheTokens, Requests int64
		Cost                                             float64
	}
	waitFor(t, "usage of every completion", 30*time.Second, func() (bool, error) {
		rows = usageOf(t, hc, doce.URL, "project")
		return len(rows) == 1 && rows[0].Requests == int64(completionsWith(llm, "Bearer "+customKey)), fmt.Errorf("rows %+v", rows)
	})
	calls = int(rows[0].Requests)
	if r := rows[0]; r.ProjectID != a.ID || r.InputTokens != int64(10*calls) || r.OutputTokens != int64(5*calls) || r.CacheTokens != 0 {
		t.Fatalf("usage %+v, want %d requests of 10 input and 5 output tokens", r, calls)
	}
	if m := usageOf(t, hc, doce.URL, "model"); len(m) != 1 || m[0].ProviderID != "custom" || m[0].ModelID != "mock-model" || m[0].Requests != int64(calls) {
		t.Fatalf("usage by model %+v", m)
	}
	if d := usageOf(t, hc, doce.URL, "day"); len(d) != 1 || d[0].Day != time.Now().UTC().Format(time.DateOnly) || d[0].InputTokens != int64(10*calls) {
		t.Fatalf("usage by day %+v", d)
	}
	t.Logf("project on custom: %d completions through the gateway, %+v", calls, rows[0])

	// 3. A model with a catalog price costs something.
	b := createProjectOn(t, hc, doce, "openrouter", "anthropic/claude-sonnet-4.5", "Priced prompt: say hello.")
	waitStatus(t, hc, doce, b.ID, "ready", 8*time.Minute)
	waitAnswer(t, hc, doce.URL, b.ID, "Hello from the mock.")
	assertKeyNowhereIn(t, docker, b.ID, routerKey)
	var spent float64
	waitFor(t, "a priced usage row", 30*time.Second, func() (bool, error) {
		for _, r := range usageOf(t, hc, doce.URL, "project") {
			if r.ProjectID == b.ID && r.Requests == int64(completionsWith(llm, "Bearer "+routerKey)) && r.Cost > 0 {
				spent = r.Cost
				return true, nil
			}
		}
		return false, fmt.Errorf("no priced row for %s among %+v", b.ID, usageOf(t, hc, doce.URL, "project"))
	})
	t.Logf("project on openrouter spent $%.6f", spent)

	// 4. A budget below what the next request costs (below what is spent) stops it, with the
	// message in the conversation; raising it lets the conversation go on.
	before := completionsWith(llm, "Bearer "+routerKey)
	if status, body := apiCall(t, hc, doce.URL, "PUT", "/api/v1/projects/"+b.ID+"/budget", map[string]any{"monthlyUsd": spent / 2}); status != http.StatusOK ||
		!strings.Contains(string(body), `"state":"reached"`) {
		t.Fatalf("set budget: %d %s", status, body)
	}
	send(t, hc, doce.URL, b.ID, "Over budget message.")
	waitFor(t, "the budget's message in the conversation", 2*time.Minute, func() (bool, error) {
		c := getConversation(t, hc, doce.URL, b.ID)
		raw, _ := json.Marshal(c.Messages)
		return strings.Contains(string(raw), "monthly budget of $") && c.Status.Type == "idle", fmt.Errorf("status %s, messages %s", c.Status.Type, raw)
	})
	if n := completionsWith(llm, "Bearer "+routerKey); n != before {
		t.Fatalf("%d requests over the budget reached the provider", n-before)
	}
	if status, body := apiCall(t, hc, doce.URL, "PUT", "/api/v1/projects/"+b.ID+"/budget", map[string]any{"monthlyUsd": 100}); status != http.StatusOK ||
		!strings.Contains(string(body), `"state":"ok"`) {
		t.Fatalf("raise budget: %d %s", status, body)
	}
	llm.script("After the raise", mockReply{Chunks: []string{"Going on after the raise."}})
	send(t, hc, doce.URL, b.ID, "After the raise, go on.")
	waitAnswer(t, hc, doce.URL, b.ID, "Going on after the raise.")

	// 5. A's token reaches A's connection only: not OpenRouter's, whoever asks.
	tokenA := storedKey(t, docker, a.ID)
	seen := len(llm.requests())
	gw := "http://" + envOf(doce.Env, "DOCE_GATEWAY_ADDR")
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/p/openrouter/chat/completions", tokenA, http.StatusForbidden},
		{"/p/custom/chat/completions", store.GatewayTokenPrefix + "made-up", http.StatusUnauthorized},
		{"/p/custom/chat/completions", customKey, http.StatusUnauthorized},
	} {
		req, _ := http.NewRequest(http.MethodPost, gw+tc.path, strings.NewReader(`{"model":"mock-model","messages":[]}`))
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("POST %s with another token: %d %s, want %d", tc.path, resp.StatusCode, body, tc.want)
		}
	}
	if n := len(llm.requests()); n != seen {
		t.Errorf("%d requests with other tokens reached the provider", n-seen)
	}

	// Prometheus counts the tokens and the cost by provider.
	resp, err := http.Get(doce.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`doce_gateway_tokens_total{kind="input",provider="custom"}`, `doce_gateway_cost_dollars_total{provider="openrouter"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// The search the key proof relies on finds a key across the pieces it reads, and nothing else.
func TestContainsInFindsAKeySplitAcrossReads(t *testing.T) {
	key := []byte("sk-split-key-0123456789")
	for _, at := range []int{0, 1<<20 - 5, 1<<20 - len(key), 1 << 20, 3<<20 + 7} {
		path := filepath.Join(t.TempDir(), "f")
		b := append(bytes.Repeat([]byte("a"), at), key...)
		b = append(b, "tail"...)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if has, err := containsIn(path, key); err != nil || !has {
			t.Errorf("key at %d: found %v, %v", at, has, err)
		}
		if has, _ := containsIn(path, []byte("sk-split-key-0123456789X")); has {
			t.Errorf("key at %d: a longer key found", at)
		}
	}
}
