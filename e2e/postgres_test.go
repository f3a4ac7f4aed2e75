package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/workspace"
)

// TestTwoWebNodesShareOnePostgres runs two `doce serve` processes and one worker on one
// PostgreSQL database: a sign-in made through one web node is good on the other (and a
// sign-out through the other ends it on both), and a project created through one shows its
// setup progress live on the other, to ready, and its conversation on both.
func TestTwoWebNodesShareOnePostgres(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	queue := fmt.Sprintf("e2e-pg-%d", time.Now().UnixNano())
	a := newDoce(t, stack, queue, []string{onPostgres(t)})
	a.start(t, "serve")
	a.start(t, "worker")
	a.waitHealthy(t)
	b := secondWebNode(t, a)

	// Sign in through A (the first-run form signs the admin in).
	hcA := newClient(t)
	resp, err := hcA.PostForm(a.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /setup on A: %v %v", resp, err)
	}
	// B knows nobody without a cookie, and knows the admin with A's.
	hcB := newClient(t) // a jar of its own
	if status, _ := apiCall(t, hcB, b.URL, "GET", "/api/v1/connections", nil); status != http.StatusUnauthorized {
		t.Fatalf("B without a session: %d, want 401", status)
	}
	aURL, _ := url.Parse(a.URL)
	bURL, _ := url.Parse(b.URL)
	hcB.Jar.SetCookies(bURL, hcA.Jar.Cookies(aURL))
	if status, body := apiCall(t, hcB, b.URL, "GET", "/api/v1/connections", nil); status != http.StatusOK {
		t.Fatalf("B with A's session: %d %s, want 200", status, body)
	}

	// Connect and create through B.
	key := "sk-e2e-pg-two-nodes"
	status, body := apiCall(t, hcB, b.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect through B: %d %s", status, body)
	}
	const prompt = "Say hello from two web nodes."
	status, body = apiCall(t, hcB, b.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "name": "Two", "providerId": "custom", "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create through B: %d %s", status, body)
	}
	var created struct{ Project struct{ ID string } }
	json.Unmarshal(body, &created)
	projectID := created.Project.ID
	start := time.Now()
	t.Cleanup(func() {
		if ws, err := workspace.NewManager("127.0.0.1"); err == nil {
			if err := ws.Down(context.Background(), projectID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})

	// A streams the progress of B's project until it is ready (the stream stays open after:
	// an open page keeps the workspace up).
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/projects/"+projectID+"/events", nil)
	stream := &http.Client{Jar: hcA.Jar, Timeout: 3 * time.Minute}
	resp, err = stream.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("events on A: %v %v", resp, err)
	}
	var events []string
	var event strings.Builder
	finished := func(e string) bool {
		return strings.Contains(e, `data-status="ready"`) && strings.Count(e, `<li class="done"`) == 5
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			event.WriteString(data + "\n")
		} else if line == "" && event.Len() > 0 {
			events = append(events, event.String())
			event.Reset()
			if finished(events[len(events)-1]) {
				break
			}
		}
	}
	resp.Body.Close()
	if len(events) < 2 {
		t.Fatalf("A sent %d progress events, want the setup's steps as they changed: %q", len(events), events)
	}
	if last := events[len(events)-1]; !finished(last) {
		t.Fatalf("A's last progress event is not a finished setup (%v):\n%s", sc.Err(), last)
	}
	t.Logf("A showed the setup ready %s after B created it", time.Since(start).Round(time.Millisecond))
	if !slices.ContainsFunc(events[:len(events)-1], func(e string) bool {
		return strings.Contains(e, `class="running"`) || strings.Contains(e, `class="pending"`)
	}) {
		t.Errorf("A never showed a step before it was done: %q", events)
	}
	waitFor(t, "the mock LLM gets the prompt", 2*time.Minute, func() (bool, error) {
		for _, rq := range llm.requests() {
			if strings.Contains(rq.Body, prompt) {
				return rq.Authorization == "Bearer "+key, fmt.Errorf("authorization %q", redact(rq.Authorization, key))
			}
		}
		return false, fmt.Errorf("%d requests", len(llm.requests()))
	})

	// The conversation, too: A shows the agent's first answer, a message sent through A is
	// answered, and B shows that answer (each web node reaches the workspace itself, with the
	// password both read from the database).
	waitAnswer(t, hcA, a.URL, projectID, "Hello from the mock.")
	t.Logf("A showed the first answer %s after the create", time.Since(start).Round(time.Millisecond))
	llm.script("Ping through A", mockReply{Chunks: []string{"Pong, ", "seen on B."}})
	send(t, hcA, a.URL, projectID, "Ping through A")
	waitAnswer(t, hcB, b.URL, projectID, "Pong, seen on B.")
	t.Logf("B showed the answer to A's message %s after the create", time.Since(start).Round(time.Millisecond))

	// Signing out through B ends the session on A too.
	resp, err = hcB.PostForm(b.URL+"/logout", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status, _ := apiCall(t, hcA, a.URL, "GET", "/api/v1/connections", nil); status != http.StatusUnauthorized {
		t.Fatalf("A after signing out through B: %d, want 401", status)
	}
}

// secondWebNode starts another `doce serve` on a's database and task queue, on a port of its own.
func secondWebNode(t *testing.T, a *doceProcess) *doceProcess {
	t.Helper()
	addr := freeAddr(t)
	b := &doceProcess{URL: "http://" + addr, DataDir: a.DataDir, Database: a.Database, Logs: &syncBuffer{}, procs: map[string]*childProcess{}}
	// The last of a duplicate key wins. Its gateway listens apart; workspaces use a's, whose
	// URL the worker writes into them.
	b.Env = append(slices.Clone(a.Env), "DOCE_HTTP_ADDR="+addr, "DOCE_GATEWAY_ADDR="+freeAddrOn(t, hostGatewayIP(t)))
	b.start(t, "serve")
	t.Cleanup(func() {
		for _, c := range b.procs {
			c.stop()
		}
		if t.Failed() {
			t.Logf("second web node's logs:\n%s", b.Logs.String())
		}
	})
	b.waitHealthy(t)
	return b
}

// pgDump returns everything in the PostgreSQL database at dbURL as pg_dump writes it.
func pgDump(t *testing.T, dbURL string) []byte {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(bins) == 0 {
		t.Fatal("pg_dump not found (Debian's postgresql package has it)")
	}
	slices.Sort(bins)
	out, err := exec.Command(bins[len(bins)-1], "--no-owner", dbURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if len(out) < 1000 {
		t.Fatalf("pg_dump wrote only %d bytes", len(out))
	}
	return out
}

// TestMigrateDBKeepsKeysUsable moves a running installation from SQLite to PostgreSQL with
// doce migrate-db: afterwards the admin signs in with the same password, and a project set up
// on PostgreSQL hands OpenCode the key connected on SQLite (the mock LLM sees it), so the
// ciphertext moved intact and still decrypts; it is nowhere in plaintext in PostgreSQL.
func TestMigrateDBKeepsKeysUsable(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	queue := fmt.Sprintf("e2e-migrate-db-%d", time.Now().UnixNano())
	old := startDoce(t, stack, queue)
	hc := newClient(t)
	if resp, err := hc.PostForm(old.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /setup: %v %v", resp, err)
	}
	key := "sk-e2e-moved-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if status, body := apiCall(t, hc, old.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	old.procs["dev"].stop() // migrate-db copies a stopped installation
	delete(old.procs, "dev")

	target := storetest.NewDatabase(t, storetest.Postgres)
	cmd := exec.Command(doceBinary(t), "migrate-db", "--from", "sqlite:"+old.Database, "--to", target)
	cmd.Env = old.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doce migrate-db: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "provider_connections            1        1") {
		t.Errorf("migrate-db's counts:\n%s", out)
	}

	moved := startDoce(t, stack, queue, "DOCE_DATABASE_URL="+target)
	hc = newClient(t)
	resp, err := hc.PostForm(moved.URL+"/login", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in on PostgreSQL: %v %v", resp, err)
	}
	const prompt = "Hello after the move."
	status, body := apiCall(t, hc, moved.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "providerId": "custom", "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create on PostgreSQL: %d %s", status, body)
	}
	var created struct{ Project struct{ ID string } }
	json.Unmarshal(body, &created)
	t.Cleanup(func() {
		if ws, err := workspace.NewManager("127.0.0.1"); err == nil {
			ws.Down(context.Background(), created.Project.ID)
		}
	})
	waitFor(t, "the mock LLM gets the prompt with the moved key", 3*time.Minute, func() (bool, error) {
		for _, rq := range llm.requests() {
			if strings.Contains(rq.Body, prompt) {
				if rq.Authorization != "Bearer "+key {
					t.Fatalf("the mock LLM got %q, want the key connected before the move", redact(rq.Authorization, key))
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("%d requests", len(llm.requests()))
	})
	if strings.Contains(string(pgDump(t, target)), key) {
		t.Error("the key is in plaintext in PostgreSQL")
	}
}
