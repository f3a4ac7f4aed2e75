package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/workspace"
)

// TestProjectSetupEndToEnd walks the whole product path through the real stack, on each
// database engine: first-run admin, bad input, connect a custom OpenAI-compatible provider
// pointing at a mock LLM, a double-submitted create, and ProjectSetup bringing up OpenCode,
// handing it the key and sending the prompt, which reaches the mock with that key; then every
// place the key must not be.
func TestProjectSetupEndToEnd(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) { testProjectSetupEndToEnd(t, dialect) })
	}
}

func testProjectSetupEndToEnd(t *testing.T, dialect string) {
	stack := requireStack(t)
	ctx := context.Background()

	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	// The mock listens on the default bridge's gateway, the address host.docker.internal
	// (host-gateway) resolves to inside a workspace.
	llm := startMockLLM(t, hostGatewayIP(t))

	queue := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	doce := startDoce(t, stack, queue, append(databaseEnv(t, dialect), "DOCE_TRACING=stdout")...) // spans go to the logs checked below
	hc := newClient(t)
	// /readyz answers anyone: ready or not, naming nothing inside.
	if status, body := apiCall(t, hc, doce.URL, "GET", "/readyz", nil); status != http.StatusOK || string(body) != `{"status":"ready"}` {
		t.Fatalf("/readyz: %d %s", status, body)
	}

	// First run: create the admin through the form.
	resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /setup: %d, want 303", resp.StatusCode)
	}
	// A second first-run is refused.
	resp, _ = newClient(t).PostForm(doce.URL+"/setup", url.Values{"username": {"intruder"}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("second POST /setup: %d, want 409", resp.StatusCode)
	}

	// No provider yet: creating a project says what to do.
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": "hello"})
	expectError(t, status, body, http.StatusConflict, "Connect a provider on the Providers page first.")

	key := "sk-e2e-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	baseURL := "http://host.docker.internal:" + llm.port() + "/v1"

	// Bad input gets a 4xx a person can act on.
	for _, tc := range []struct {
		name string
		in   map[string]any
		want int
		msg  string
	}{
		{"unknown provider", map[string]any{"providerId": "nope", "apiKey": key}, 400, "Unknown provider"},
		{"empty key", map[string]any{"providerId": "custom", "apiKey": "", "baseURL": baseURL, "models": "mock-model"}, 400, "Enter the API key"},
		{"oversized key", map[string]any{"providerId": "custom", "apiKey": strings.Repeat("k", 10<<10), "baseURL": baseURL, "models": "mock-model"}, 400, "characters long"},
		{"malformed base URL", map[string]any{"providerId": "custom", "apiKey": key, "baseURL": "not a url", "models": "mock-model"}, 400, "is not an http(s) URL"},
		{"wrong prefix", map[string]any{"providerId": "anthropic", "apiKey": "sk-nope"}, 400, `start with "sk-ant-"`},
	} {
		status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", tc.in)
		expectError(t, status, body, tc.want, tc.msg)
	}

	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": key, "baseURL": baseURL, "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": key, "baseURL": baseURL, "models": "mock-model"})
	expectError(t, status, body, http.StatusConflict, "already connected")

	const prompt = "Build a tiny hello world page."
	start := time.Now()
	// A double submit (four at once, one request id) makes one project and one setup.
	type createResult struct {
		status int
		body   []byte
	}
	results := make(chan createResult, 4)
	for range 4 {
		go func() {
			status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects",
				map[string]any{"prompt": prompt, "name": "Hello", "providerId": "custom", "modelId": "mock-model", "requestId": "e2e-create-1"})
			results <- createResult{status, body}
		}()
	}
	type projectRef struct {
		Project struct{ ID, WorkflowID, Status string }
	}
	var created projectRef
	statuses := map[int]int{}
	for range 4 {
		r := <-results
		statuses[r.status]++
		var got projectRef
		json.Unmarshal(r.body, &got)
		if created.Project.ID == "" {
			created = got
		} else if got.Project.ID != created.Project.ID {
			t.Fatalf("double submit made two projects: %s and %s", created.Project.ID, got.Project.ID)
		}
	}
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusOK] != 3 {
		t.Fatalf("double submit answers %v, want one 201 and three 200", statuses)
	}
	projectID := created.Project.ID
	if created.Project.WorkflowID != "project-setup:"+projectID {
		t.Fatalf("workflow id %q", created.Project.WorkflowID)
	}

	var final struct {
		Project struct {
			Status, SetupError string
			Progress           struct {
				State string
				Steps []struct{ Name, Status string }
			}
		}
	}
	waitFor(t, "project ready", 3*time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+projectID, nil)
		if status != http.StatusOK {
			return false, fmt.Errorf("GET project: %d %s", status, body)
		}
		json.Unmarshal(body, &final)
		if final.Project.Status == "failed" {
			t.Fatalf("setup failed: %s", body)
		}
		return final.Project.Status == "ready", fmt.Errorf("status %s", final.Project.Status)
	})
	t.Logf("setup took %s from POST /api/v1/projects to ready", time.Since(start).Round(time.Millisecond))
	if dialect == storetest.SQLite { // one recording is enough
		recordHistory(t, stack, created.Project.WorkflowID, "project_setup_completed.json")
	}
	if final.Project.Progress.State != "completed" || len(final.Project.Progress.Steps) != 5 {
		t.Fatalf("progress: %+v", final.Project.Progress)
	}
	for _, st := range final.Project.Progress.Steps {
		if st.Status != "done" {
			t.Errorf("step %s is %s, want done", st.Name, st.Status)
		}
	}

	// Metrics: doce's own and the Temporal SDK's, on one page.
	// Metrics: on DOCE_METRICS_ADDR only, never on the web port.
	if status, _ := apiCall(t, hc, doce.URL, "GET", "/metrics", nil); status != http.StatusNotFound {
		t.Errorf("/metrics on the web port: %d, want 404", status)
	}
	status, body = apiCall(t, hc, doce.MetricsURL, "GET", "/metrics", nil)
	for _, want := range []string{
		`doce_setups_started_total{provider="custom"} 1`,
		`doce_setups_ended_total{outcome="ready"} 1`,
		`doce_http_request_duration_seconds_bucket{method="POST",route="/api/v1/projects"`,
		`doce_vault_request_duration_seconds_count{operation="decrypt",outcome="ok"}`,
		`doce_setups_waiting_for_operator 0`,
		`temporal_activity_execution_latency`,
	} {
		if status != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("/metrics (%d) lacks %s", status, want)
		}
	}

	// The container runs with its labels, its port published on loopback only.
	cs, err := docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers for project: %d, %v", len(cs), err)
	}
	ci, err := docker.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !ci.State.Running {
		t.Fatalf("container state %s", ci.State.Status)
	}
	for k, want := range map[string]string{
		workspace.LabelComposeProject: "doce-" + projectID,
		workspace.LabelComposeService: "opencode",
		workspace.LabelProject:        projectID,
	} {
		if got := ci.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	bindings := ci.NetworkSettings.Ports["4096/tcp"]
	if len(bindings) == 0 {
		t.Fatal("OpenCode port not published")
	}
	for _, b := range bindings {
		if b.HostIP != "127.0.0.1" {
			t.Errorf("OpenCode port bound to %q, want 127.0.0.1 only", b.HostIP)
		}
	}
	if ci.HostConfig.Memory == 0 {
		t.Error("container has no memory limit")
	}
	assertNoSecretInInspect(t, ci, key)

	// OpenCode's auth.json holds a gateway token, set through PUT /auth; the key stays outside.
	authJSON := readContainerFile(t, docker, cs[0].ID, workspace.AuthFile)
	var auth map[string]struct{ Type, Key string }
	if err := json.Unmarshal(authJSON, &auth); err != nil {
		t.Fatalf("auth.json: %v", err)
	}
	if auth["custom"].Type != "api" || !strings.HasPrefix(auth["custom"].Key, store.GatewayTokenPrefix) || strings.Contains(string(authJSON), key) {
		t.Fatalf("auth.json does not hold a gateway token for provider custom (type %q), or holds the key", auth["custom"].Type)
	}

	// OpenCode holds the session with the prompt, and needs its password.
	port := bindings[0].HostPort
	password := envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD")
	if password == "" {
		t.Fatal("container has no OPENCODE_SERVER_PASSWORD")
	}
	oc := &http.Client{Timeout: 5 * time.Second}
	r, err := oc.Get("http://127.0.0.1:" + port + "/session")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("OpenCode without password: %d, want 401", r.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+"/session", nil)
	req.SetBasicAuth("opencode", password)
	r, err = oc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sessions []struct{ ID string }
	json.NewDecoder(r.Body).Decode(&sessions)
	r.Body.Close()
	if len(sessions) != 1 {
		t.Fatalf("OpenCode has %d sessions, want 1", len(sessions))
	}

	// The mock LLM got the prompt with the key as bearer token: the credentials reached OpenCode.
	waitFor(t, "mock LLM receives the prompt", time.Minute, func() (bool, error) {
		for _, rq := range llm.requests() {
			if rq.Path == "/v1/chat/completions" && strings.Contains(rq.Body, prompt) {
				if rq.Authorization != "Bearer "+key {
					t.Fatalf("mock LLM got Authorization %q, want the connected key", redact(rq.Authorization, key))
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("%d requests so far", len(llm.requests()))
	})

	// One trace runs from the HTTP request through the workflow into its activities. (The
	// double submit above makes several requests and start calls; the run joins one of them.)
	waitFor(t, "the setup's spans", 20*time.Second, func() (bool, error) {
		traces := map[string]map[string]bool{} // span name → trace ids
		for _, line := range strings.Split(doce.Logs.String(), "\n") {
			var span struct {
				Name        string
				SpanContext struct{ TraceID string }
			}
			if json.Unmarshal([]byte(line), &span) == nil && span.SpanContext.TraceID != "" {
				if traces[span.Name] == nil {
					traces[span.Name] = map[string]bool{}
				}
				traces[span.Name][span.SpanContext.TraceID] = true
			}
		}
		for run := range traces["RunWorkflow:ProjectSetup"] {
			if traces["StartWorkflow:ProjectSetup"][run] && traces["POST /api/v1/projects"][run] && traces["RunActivity:docker.composeUp"][run] {
				return true, nil
			}
		}
		return false, fmt.Errorf("trace ids by span: %v", traces)
	})

	// The ciphertext is Vault Transit's, and the key is nowhere in plaintext.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := st.Connection(ctx, mustAdminID(t, st), "custom")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(conn.APIKeyCiphertext, "vault:v1:") {
		t.Errorf("stored key is not Vault Transit ciphertext: %.12q…", conn.APIKeyCiphertext)
	}
	if dialect == storetest.Postgres {
		if bytes.Contains(pgDump(t, doce.Database), []byte(key)) {
			t.Error("the key is in plaintext in the PostgreSQL database")
		}
	}
	for _, f := range []string{"doce.db", "doce.db-wal", "doce.db-shm"} {
		b, err := os.ReadFile(filepath.Join(doce.DataDir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(key)) {
			t.Errorf("the key is in plaintext in %s", f)
		}
	}
	if strings.Contains(doce.Logs.String(), key) {
		t.Error("the key is in doce's logs")
	}
	// Log lines say whose request and which project, and steps say which run.
	for _, want := range []string{
		`"route":"/api/v1/projects/:id","status":200,`,
		`"project_id":"` + projectID + `"`,
		`"msg":"step started","Namespace":"default"`,
		`"WorkflowID":"project-setup:` + projectID + `"`,
	} {
		if !strings.Contains(doce.Logs.String(), want) {
			t.Errorf("doce's logs lack %s", want)
		}
	}
	if strings.Contains(hc.responses(), key) {
		t.Error("the key is in an HTTP response")
	}
	if h := workflowHistory(t, stack, created.Project.WorkflowID); strings.Contains(h, key) {
		t.Error("the key is in the workflow history")
	} else if !strings.Contains(h, "opencode.waitHealthy") {
		t.Errorf("workflow history looks empty (%d bytes)", len(h))
	}
}

func apiCall(t testing.TB, hc *recordingClient, base, method, path string, in any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func expectError(t *testing.T, status int, body []byte, want int, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("want a JSON error body, got %q", body)
		return
	}
	if status != want || !strings.Contains(e.Error.Message, msg) {
		t.Errorf("got %d %q, want %d with %q", status, e.Error.Message, want, msg)
	}
}

func readContainerFile(t *testing.T, docker *dockerclient.Client, id, path string) []byte {
	t.Helper()
	rc, _, err := docker.CopyFromContainer(context.Background(), id, path)
	if err != nil {
		t.Fatalf("copy %s from container: %v", path, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func envOf(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}

func mustAdminID(t *testing.T, st *store.Store) string { return mustAdminIDNamed(t, st, "admin") }

func mustAdminIDNamed(t *testing.T, st *store.Store, username string) string {
	u, err := st.UserByUsername(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// workflowHistory returns the run's whole history in protobuf wire form, its payloads decoded
// through doce's codec (as an admin sees them through the codec endpoint), where they appear as
// the raw bytes they hold: a secret found here would be one the codec endpoint shows.
// TestWorkflowPayloadsEncrypted checks the history as stored holds none of it in clear.
func workflowHistory(t *testing.T, stack stackEnv, workflowID string) string {
	t.Helper()
	return wire(t, fetchHistory(t, decodingOptions(t, stack), workflowID))
}

func redact(s, secret string) string { return strings.ReplaceAll(s, secret, "<the key>") }

// TestReplaceAndDisconnectReachRunningProjects replaces a connected key, then disconnects the
// provider: the running project's OpenCode loses the credential before the connection is gone.
// Another user cannot see or touch the connection.
func TestReplaceAndDisconnectReachRunningProjects(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-disconnect-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-e2e-first-key")
	p := createProject(t, hc, doce, "disconnect me")
	waitStatus(t, hc, doce, p.ID, "ready", 2*time.Minute)

	// Replacing needs saying so.
	in := map[string]any{"providerId": "custom", "apiKey": "sk-e2e-second-key", "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model"}
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", in)
	expectError(t, status, body, http.StatusConflict, "already connected")
	in["replace"] = true
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", in)
	if status != http.StatusOK || !strings.Contains(string(body), `"displayHint":"…-key"`) {
		t.Fatalf("replace: %d %s", status, body)
	}
	// The running project's OpenCode gets a new gateway token (the key stays outside), and the
	// one it held stops working.
	replaced := time.Now()
	tokenOf := func() (string, error) {
		cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+p.ID))})
		if err != nil || len(cs) != 1 {
			return "", fmt.Errorf("containers: %d %w", len(cs), err)
		}
		var auth map[string]struct{ Key string }
		json.Unmarshal(readContainerFile(t, docker, cs[0].ID, workspace.AuthFile), &auth)
		return auth["custom"].Key, nil
	}
	first, err := tokenOf()
	if err != nil || !strings.HasPrefix(first, store.GatewayTokenPrefix) {
		t.Fatalf("the workspace holds %q (%v), want a gateway token", first, err)
	}
	// The push may have come before the first read: compare with what the database honours.
	waitFor(t, "a new gateway token in the workspace", 30*time.Second, func() (bool, error) {
		now, err := tokenOf()
		if err != nil {
			return false, err
		}
		st, err := store.Open(doce.Database)
		if err != nil {
			return false, err
		}
		defer st.Close()
		_, err = st.GatewayGrant(context.Background(), now)
		return err == nil && strings.HasPrefix(now, store.GatewayTokenPrefix) && !strings.Contains(now, "second-key"), fmt.Errorf("token %q: %w", now, err)
	})
	t.Logf("a new token reached the workspace %s after the reply", time.Since(replaced).Round(10*time.Millisecond))
	recordHistory(t, stack, "credential-push:"+mustUserID(t, doce, "admin")+":custom", "credential_push.json")

	// Another user gets 404 for the connection and cannot disconnect it.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("bob's password"), bcrypt.MinCost)
	if err := st.CreateUser(context.Background(), &store.User{Username: "bob", PasswordHash: string(hash), Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	bob := newClient(t)
	if resp, err := bob.PostForm(doce.URL+"/login", url.Values{"username": {"bob"}, "password": {"bob's password"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob login: %v", err)
	}
	status, _ = apiCall(t, bob, doce.URL, "DELETE", "/api/v1/connections/custom", nil)
	if status != http.StatusNotFound {
		t.Errorf("bob disconnecting admin's provider: %d, want 404", status)
	}
	if status, body := apiCall(t, bob, doce.URL, "GET", "/api/v1/connections", nil); status != http.StatusOK || strings.Contains(string(body), "custom") {
		t.Errorf("bob's connections: %d %s", status, body)
	}

	status, body = apiCall(t, hc, doce.URL, "DELETE", "/api/v1/connections/custom", nil)
	if status != http.StatusAccepted {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	waitFor(t, "connection gone", time.Minute, func() (bool, error) {
		_, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/connections", nil)
		return !strings.Contains(string(body), `"custom"`), fmt.Errorf("%s", body)
	})
	recordHistory(t, stack, "provider-disconnect:"+mustUserID(t, doce, "admin")+":custom", "provider_disconnect.json")
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+p.ID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers: %d %v", len(cs), err)
	}
	var auth map[string]any
	json.Unmarshal(readContainerFile(t, docker, cs[0].ID, workspace.AuthFile), &auth)
	if _, ok := auth["custom"]; ok {
		t.Error("the project's auth.json still holds the disconnected provider")
	}
	// Creating a project now says what to do.
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": "again"})
	expectError(t, status, body, http.StatusConflict, "Connect a provider on the Providers page first.")
}

func mustUserID(t *testing.T, doce *doceProcess, username string) string {
	t.Helper()
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return mustAdminIDNamed(t, st, username)
}

// TestCopiedCiphertextDoesNotDecrypt copies one user's key ciphertext into another user's row
// in the database: the LLM gateway cannot open it for the other user's project, because the
// ciphertext is bound to the row it was made for.
func TestCopiedCiphertextDoesNotDecrypt(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-copy-%d", time.Now().UnixNano()))
	admin(t, doce, "sk-e2e-alice-key")

	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	hash, _ := bcrypt.GenerateFromPassword([]byte("bob's password"), bcrypt.MinCost)
	if err := st.CreateUser(ctx, &store.User{Username: "bob", PasswordHash: string(hash), Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	bob := newClient(t)
	if resp, err := bob.PostForm(doce.URL+"/login", url.Values{"username": {"bob"}, "password": {"bob's password"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob login: %v", err)
	}
	llm := startMockLLM(t, hostGatewayIP(t))
	if status, body := apiCall(t, bob, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-e2e-bob-key", "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("bob connect: %d %s", status, body)
	}
	aliceConn, err := st.Connection(ctx, mustAdminID(t, st), "custom")
	if err != nil {
		t.Fatal(err)
	}
	bobUser, _ := st.UserByUsername(ctx, "bob")
	if _, err := st.DB.NewUpdate().Model((*store.ProviderConnection)(nil)).Set("api_key_ciphertext = ?", aliceConn.APIKeyCiphertext).
		Where("user_id = ?", bobUser.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}

	// The key is opened by the LLM gateway, per request, not during setup: the project becomes
	// ready, and its first request to the model is refused with the reason, never sent on.
	p := createProject(t, bob, doce, "stolen key")
	waitStatus(t, bob, doce, p.ID, "ready", 2*time.Minute)
	var raw []byte
	waitFor(t, "the refusal in the conversation", 2*time.Minute, func() (bool, error) {
		c := getConversation(t, bob, doce.URL, p.ID)
		raw, _ = json.Marshal(c.Messages)
		return strings.Contains(string(raw), "key cannot be decrypted") && c.Status.Type == "idle", fmt.Errorf("status %s, messages %s", c.Status.Type, raw)
	})
	if strings.Contains(string(raw), "sk-e2e-alice-key") {
		t.Error("the conversation shows alice's key")
	}
	if n := completionsWith(llm, "Bearer sk-e2e-alice-key"); n != 0 {
		t.Errorf("%d requests reached bob's provider with a key doce could not open", n)
	}
}

// TestWellKnownConnection connects an organisation's well-known configuration served locally:
// the project's OpenCode loads it, and the prompt reaches the organisation's model with the
// token. Disconnecting removes the entry again.
func TestWellKnownConnection(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	org := startMockLLM(t, hostGatewayIP(t)) // reachable from doce and from workspaces
	doce := startDoce(t, stack, fmt.Sprintf("e2e-wellknown-%d", time.Now().UnixNano()))
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	token := "corp-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{"providerId": "wellknown", "wellKnownUrl": "http://127.0.0.1:9", "token": token})
	expectError(t, status, body, http.StatusBadRequest, "could not reach")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{"providerId": "wellknown", "wellKnownUrl": org.URL, "token": token})
	if status != http.StatusCreated || !strings.Contains(string(body), `"models":["corp/mock-model"]`) {
		t.Fatalf("connect well-known: %d %s", status, body)
	}

	const prompt = "Hello from the organisation."
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "providerId": "wellknown", "modelId": "corp/mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ Project struct{ ID string } }
	json.Unmarshal(body, &created)
	id := created.Project.ID
	waitStatus(t, hc, doce, id, "ready", 2*time.Minute)
	waitFor(t, "the organisation's model receives the prompt with the token", time.Minute, func() (bool, error) {
		for _, rq := range org.requests() {
			if rq.Path == "/v1/chat/completions" && strings.Contains(rq.Body, prompt) {
				if rq.Authorization != "Bearer "+token {
					t.Fatalf("the model got Authorization %q, want the token", redact(rq.Authorization, token))
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("%d requests", len(org.requests()))
	})
	cs, _ := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+id))})
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	var auth map[string]struct{ Type, Key, Token string }
	json.Unmarshal(readContainerFile(t, docker, cs[0].ID, workspace.AuthFile), &auth)
	if e := auth[org.URL]; e.Type != "wellknown" || e.Key != "CORP_TOKEN" || e.Token != token {
		t.Fatalf("auth.json entry for %s: type %q key %q", org.URL, e.Type, e.Key)
	}
	for _, f := range []string{"doce.db", "doce.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(doce.DataDir, f))
		if bytes.Contains(b, []byte(token)) {
			t.Errorf("the token is in plaintext in %s", f)
		}
	}

	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/connections/wellknown", nil); status != http.StatusAccepted {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	waitFor(t, "connection gone", time.Minute, func() (bool, error) {
		_, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/connections", nil)
		return !strings.Contains(string(body), `"wellknown"`), fmt.Errorf("%s", body)
	})
	auth = nil
	json.Unmarshal(readContainerFile(t, docker, cs[0].ID, workspace.AuthFile), &auth)
	if _, ok := auth[org.URL]; ok {
		t.Error("auth.json still holds the well-known entry after disconnect")
	}
	if strings.Contains(doce.Logs.String(), token) || strings.Contains(hc.responses(), token) {
		t.Error("the token is in doce's logs or an HTTP response")
	}
}
