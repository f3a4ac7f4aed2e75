package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/coder/websocket"

	"github.com/doce-dev/doce/store"
)

// The workbench against real workspaces (docs/conversation.md, "The workbench"): the review of
// what the agent changed, undo and redo, and terminals relayed over WebSocket.

// workbenchProject signs in an admin with a custom connection on llm, creates a project and
// waits for its first answer.
func workbenchProject(t *testing.T, doce *doceProcess, llm *mockLLM) (*recordingClient, projectState, string) {
	t.Helper()
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	key := "sk-wb-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	p := createProject(t, hc, doce, "Start the workbench project.")
	waitStatus(t, hc, doce, p.ID, "ready", 8*time.Minute)
	waitAnswer(t, hc, doce.URL, p.ID, "Hello from the mock.")
	return hc, p, key
}

// workspaceSecret is the project's OpenCode server password, read off its container.
func workspaceSecret(t *testing.T, projectID string) string {
	t.Helper()
	ci, err := dockerClient(t).ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		t.Fatal(err)
	}
	pw := envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD")
	if pw == "" {
		t.Fatal("the workspace has no server password")
	}
	return pw
}

// inWorkspace reports whether path exists in the project's workspace.
func inWorkspace(projectID, path string) bool {
	return exec.Command("docker", "exec", "doce-"+projectID+"-opencode", "test", "-e", "/workspace/"+path).Run() == nil
}

type changedFile struct {
	Path, Status, Patch  string
	Additions, Deletions int
	Binary, Truncated    bool
}

func getChanges(t *testing.T, hc *recordingClient, base, path string) (string, []changedFile) {
	t.Helper()
	status, body := apiCall(t, hc, base, "GET", path, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	var v struct {
		Base  string
		Files []changedFile
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Base, v.Files
}

func fileIn(files []changedFile, path string) *changedFile {
	for i := range files {
		if files[i].Path == path {
			return &files[i]
		}
	}
	return nil
}

// userMessage is the id of the user message whose text has marker.
func userMessage(t *testing.T, hc *recordingClient, base, projectID, marker string) string {
	t.Helper()
	for _, m := range getConversation(t, hc, base, projectID).Messages {
		if m.Info.Role != "user" {
			continue
		}
		for _, p := range m.Parts {
			if strings.Contains(p.Text, marker) {
				return m.Info.ID
			}
		}
	}
	t.Fatalf("no user message with %q", marker)
	return ""
}

func TestWorkbenchReviewAndUndo(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-wb-%d", time.Now().UnixNano()))
	hc, p, key := workbenchProject(t, doce, llm)
	base := "/api/v1/projects/" + p.ID
	stream := openStream(t, hc, doce.URL, base+"/stream", "")
	marker := "marker-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(6))

	// The agent writes a file with its bash tool (the shell is real in the workspace).
	llm.script("Write the marker file", mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{
		"command": "printf '%s\\n' " + marker + " > notes.txt", "description": "write notes.txt"}}}},
		mockReply{Chunks: []string{"Marker written."}})
	send(t, hc, doce.URL, p.ID, "Write the marker file please.")
	waitAnswer(t, hc, doce.URL, p.ID, "Marker written.")
	if !inWorkspace(p.ID, "notes.txt") {
		t.Fatal("the agent's bash tool did not write notes.txt")
	}
	from, files := getChanges(t, hc, doce.URL, base+"/changes")
	f := fileIn(files, "notes.txt")
	if from != "start" || f == nil || f.Status != "added" || f.Additions != 1 || !strings.Contains(f.Patch, "+"+marker) {
		t.Fatalf("changes (base %q) do not show notes.txt with its patch: %+v", from, files)
	}
	mid := userMessage(t, hc, doce.URL, p.ID, "Write the marker file")
	_, turn := getChanges(t, hc, doce.URL, base+"/messages/"+mid+"/changes")
	if f := fileIn(turn, "notes.txt"); f == nil || !strings.Contains(f.Patch, marker) {
		t.Errorf("the turn's changes do not show notes.txt: %+v", turn)
	}

	// Undo from that message: the file is gone and the turn hidden, with its prompt offered back.
	status, body := apiCall(t, hc, doce.URL, "POST", base+"/revert", map[string]any{"messageId": mid})
	if status != http.StatusOK || !strings.Contains(string(body), `"revert":{"messageId":"`+mid) {
		t.Fatalf("revert: %d %s", status, body)
	}
	waitFor(t, "notes.txt to be rolled back", 10*time.Second, func() (bool, error) { return !inWorkspace(p.ID, "notes.txt"), nil })
	var conv struct {
		Messages []struct{ Info struct{ ID string } }
		Revert   *struct {
			MessageID, Prompt string
			Messages          int
		}
	}
	_, body = apiCall(t, hc, doce.URL, "GET", base+"/messages", nil)
	json.Unmarshal(body, &conv)
	if conv.Revert == nil || conv.Revert.MessageID != mid || conv.Revert.Messages < 2 || !strings.Contains(conv.Revert.Prompt, "Write the marker file") {
		t.Errorf("GET messages after revert: revert = %+v", conv.Revert)
	}
	for _, m := range conv.Messages {
		if m.Info.ID >= mid {
			t.Errorf("message %s of the undone turn is still shown", m.Info.ID)
		}
	}
	if _, files := getChanges(t, hc, doce.URL, base+"/changes"); fileIn(files, "notes.txt") != nil {
		t.Errorf("changes still list notes.txt after the undo: %+v", files)
	}

	// Restore brings both back.
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/unrevert", nil); status != http.StatusOK || strings.Contains(string(body), `"revert"`) {
		t.Fatalf("unrevert: %d %s", status, body)
	}
	waitFor(t, "notes.txt to be restored", 10*time.Second, func() (bool, error) { return inWorkspace(p.ID, "notes.txt"), nil })
	if c := getConversation(t, hc, doce.URL, p.ID); !strings.Contains(c.assistantText(), "Marker written.") {
		t.Errorf("the turn is not back after restore: %q", c.assistantText())
	}

	// Once the agent commits, the review still shows the work since the project started.
	llm.script("Commit the work", mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{
		"command": "git add -A && git commit -qm 'agent commit'", "description": "commit"}}}},
		mockReply{Chunks: []string{"Committed."}})
	send(t, hc, doce.URL, p.ID, "Commit the work now.")
	waitAnswer(t, hc, doce.URL, p.ID, "Committed.")
	if from, files := getChanges(t, hc, doce.URL, base+"/changes"); from != "start" || fileIn(files, "notes.txt") == nil {
		t.Errorf("after the agent's commit the review (base %q) lost notes.txt: %+v", from, files)
	}

	// Undo while the agent is busy: doce stops the turn first.
	slow := make([]string, 200)
	for i := range slow {
		slow[i] = fmt.Sprintf("slow%03d ", i)
	}
	llm.script("A slow turn", mockReply{Chunks: slow, Delay: 100 * time.Millisecond}) // 20 s
	send(t, hc, doce.URL, p.ID, "A slow turn please.")
	waitFor(t, "the slow turn to start", 30*time.Second, func() (bool, error) {
		return strings.Contains(getConversation(t, hc, doce.URL, p.ID).assistantText(), "slow002"), nil
	})
	slowID := userMessage(t, hc, doce.URL, p.ID, "A slow turn")
	began := time.Now()
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/revert", map[string]any{"messageId": slowID}); status != http.StatusOK {
		t.Fatalf("revert of a busy session: %d %s", status, body)
	}
	t.Logf("undo of a busy session took %s", time.Since(began).Round(time.Millisecond))
	if c := getConversation(t, hc, doce.URL, p.ID); c.Status.Type != "idle" || strings.Contains(c.assistantText(), "slow002") {
		t.Errorf("after undoing a busy turn: status %s, text %q", c.Status.Type, c.assistantText())
	}

	// Sessions: fork before a message, rename, compact, delete; the main session stays.
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/sessions/"+getConversation(t, hc, doce.URL, p.ID).SessionID+"/fork", map[string]any{"messageId": mid})
	var forked struct{ Session struct{ ID, Title string } }
	if json.Unmarshal(body, &forked); status != http.StatusCreated || forked.Session.ID == "" {
		t.Fatalf("fork: %d %s", status, body)
	}
	fork := base + "/sessions/" + forked.Session.ID
	if status, body := apiCall(t, hc, doce.URL, "PATCH", fork, map[string]any{"title": "Forked thread"}); status != http.StatusOK || !strings.Contains(string(body), "Forked thread") {
		t.Errorf("rename: %d %s", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "PATCH", fork, map[string]any{"title": "  "})
	expectError(t, status, body, http.StatusBadRequest, "title of 1 to 100")
	if status, body := apiCall(t, hc, doce.URL, "POST", fork+"/compact", nil); status != http.StatusAccepted {
		t.Errorf("compact: %d %s", status, body)
	}
	waitFor(t, "the compaction", 60*time.Second, func() (bool, error) {
		_, body := apiCall(t, hc, doce.URL, "GET", base+"/messages?session="+forked.Session.ID, nil)
		return strings.Contains(string(body), `"compaction":true`) && strings.Contains(string(body), `"status":{"type":"idle"}`), fmt.Errorf("%.400s", body)
	})
	if status, body := apiCall(t, hc, doce.URL, "GET", base+"/todos", nil); status != http.StatusOK || !strings.Contains(string(body), `"todos":[`) {
		t.Errorf("todos: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "DELETE", fork, nil); status != http.StatusNoContent {
		t.Errorf("delete session: %d %s", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "GET", base+"/messages?session="+forked.Session.ID, nil)
	expectError(t, status, body, http.StatusNotFound, "No such session")
	status, body = apiCall(t, hc, doce.URL, "DELETE", base+"/sessions/"+getConversation(t, hc, doce.URL, p.ID).SessionID, nil)
	expectError(t, status, body, http.StatusConflict, "main session")

	// Bad input is a 4xx a person can act on.
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/revert", map[string]any{})
	expectError(t, status, body, http.StatusBadRequest, "messageId")
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/revert", map[string]any{"messageId": "msg_nope"})
	expectError(t, status, body, http.StatusBadRequest, "user message")
	status, body = apiCall(t, hc, doce.URL, "GET", base+"/messages/msg_nope/changes?session=ses_nope", nil)
	expectError(t, status, body, http.StatusNotFound, "No such session")

	// Another user gets 404 on every new route.
	bob := addUser(t, doce, hc, "bob")
	assertNoWorkbenchAccess(t, bob, doce.URL, p.ID, mid)

	secret := workspaceSecret(t, p.ID)
	if r := hc.responses(); strings.Contains(r, key) || strings.Contains(r, secret) {
		t.Error("a response carried the provider key or the workspace's password")
	}
	evs := stream.all()
	if len(evs) == 0 {
		t.Error("the stream carried no event")
	}
	for _, ev := range evs {
		if strings.Contains(string(ev.Data), key) || strings.Contains(string(ev.Data), secret) {
			t.Errorf("a stream event carried a secret: %s", ev.Type)
		}
	}
	if logs := doce.Logs.String(); strings.Contains(logs, key) || strings.Contains(logs, secret) {
		t.Error("doce's logs carry the provider key or the workspace's password")
	}
}

// assertNoWorkbenchAccess checks hc gets 404 on every workbench route of project id.
func assertNoWorkbenchAccess(t *testing.T, hc *recordingClient, base, id, messageID string) {
	t.Helper()
	for _, prefix := range []string{"/api/v1/projects/", "/projects/"} {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/changes", nil},
			{"GET", "/messages/" + messageID + "/changes", nil},
			{"POST", "/revert", map[string]any{"messageId": messageID}},
			{"POST", "/unrevert", map[string]any{}},
			{"GET", "/todos", nil},
			{"PATCH", "/sessions/ses_x", map[string]any{"title": "mine"}},
			{"DELETE", "/sessions/ses_x", nil},
			{"POST", "/sessions/ses_x/fork", map[string]any{}},
			{"POST", "/sessions/ses_x/compact", nil},
			{"GET", "/terminals", nil},
			{"POST", "/terminals", map[string]any{}},
			{"PUT", "/terminals/pty_x", map[string]any{"rows": 10, "cols": 10}},
			{"DELETE", "/terminals/pty_x", nil},
			{"GET", "/terminals/pty_x/connect", nil},
		} {
			status, body := apiCall(t, hc, base, r.method, prefix+id+r.path, r.body)
			if status != http.StatusNotFound {
				t.Errorf("%s %s%s%s by another user: %d %s, want 404", r.method, prefix, id, r.path, status, body)
			}
		}
	}
}

// termConn is a terminal WebSocket as a browser would hold it: the output so far, and the
// cursor (UTF-16 units of output since the start) to resume from.
type termConn struct {
	c      *websocket.Conn
	mu     sync.Mutex
	out    strings.Builder
	cursor int64
	synced bool // the cursor frame has come
	done   chan struct{}
}

func dialTerminal(ctx context.Context, base, path string, hdr http.Header, jar http.CookieJar) (*websocket.Conn, *http.Response, error) {
	u := "ws" + strings.TrimPrefix(base, "http") + path
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: &http.Client{Jar: jar}, HTTPHeader: hdr})
}

func openTerminal(t *testing.T, hc *recordingClient, base, path string) *termConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := dialTerminal(ctx, base, path, http.Header{"Origin": {base}}, hc.Jar)
	if err != nil {
		t.Fatalf("connect %s: %v (%v)", path, err, resp)
	}
	c.SetReadLimit(1 << 20)
	tc := &termConn{c: c, done: make(chan struct{})}
	go func() {
		defer close(tc.done)
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			tc.mu.Lock()
			if typ == websocket.MessageBinary && len(b) > 0 && b[0] == 0 {
				var v struct{ Cursor int64 }
				json.Unmarshal(b[1:], &v)
				tc.cursor, tc.synced = v.Cursor, true
			} else {
				tc.out.Write(b)
				if tc.synced {
					tc.cursor += int64(len(utf16.Encode([]rune(string(b)))))
				}
			}
			tc.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return tc
}

func (tc *termConn) output() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.out.String()
}

func (tc *termConn) typeLine(t *testing.T, line string) {
	t.Helper()
	if err := tc.c.Write(context.Background(), websocket.MessageText, []byte(line+"\r")); err != nil {
		t.Fatalf("type %q: %v", line, err)
	}
}

func (tc *termConn) waitOutput(t *testing.T, want string) {
	t.Helper()
	waitFor(t, "terminal output "+want, 20*time.Second, func() (bool, error) {
		return strings.Contains(tc.output(), want), fmt.Errorf("output so far: %q", tc.output())
	})
}

func TestWorkbenchTerminal(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-term-%d", time.Now().UnixNano()))
	hc, p, key := workbenchProject(t, doce, llm)
	base := "/api/v1/projects/" + p.ID
	secret := workspaceSecret(t, p.ID)

	status, body := apiCall(t, hc, doce.URL, "POST", base+"/terminals", map[string]any{"title": "e2e"})
	var created struct{ ID string }
	if json.Unmarshal(body, &created); status != http.StatusCreated || created.ID == "" {
		t.Fatalf("create terminal: %d %s", status, body)
	}
	term := base + "/terminals/" + created.ID
	if status, body := apiCall(t, hc, doce.URL, "GET", base+"/terminals", nil); status != http.StatusOK || !strings.Contains(string(body), created.ID) {
		t.Fatalf("list terminals: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "PUT", term, map[string]any{"rows": 30, "cols": 100}); status != http.StatusOK {
		t.Fatalf("resize: %d %s", status, body)
	}

	tc := openTerminal(t, hc, doce.URL, term+"/connect")
	tc.typeLine(t, "echo wb-$((40+2))-done")
	tc.waitOutput(t, "wb-42-done")
	tc.typeLine(t, "stty size")
	tc.waitOutput(t, "30 100")
	tc.typeLine(t, `echo "pw=[$OPENCODE_SERVER_PASSWORD]"; env | grep -c . ; echo env-listed`)
	tc.typeLine(t, "env")
	tc.waitOutput(t, "env-listed")
	tc.waitOutput(t, "pw=[]")
	if status, body := apiCall(t, hc, doce.URL, "PUT", term, map[string]any{"rows": 40, "cols": 120}); status != http.StatusOK {
		t.Fatalf("resize: %d %s", status, body)
	}
	tc.typeLine(t, "stty size")
	tc.waitOutput(t, "40 120")
	// Output made after the first connection goes lands in the buffer; a second connection from
	// the first one's cursor gets exactly what it had not seen.
	tc.typeLine(t, "sleep 2; echo late-$((1+1))")
	time.Sleep(300 * time.Millisecond)
	tc.mu.Lock()
	cursor, synced := tc.cursor, tc.synced
	tc.mu.Unlock()
	tc.c.Close(websocket.StatusNormalClosure, "")
	<-tc.done
	if !synced {
		t.Fatal("the terminal sent no cursor frame")
	}
	time.Sleep(3 * time.Second)
	again := openTerminal(t, hc, doce.URL, fmt.Sprintf("%s/connect?cursor=%d", term, cursor))
	again.waitOutput(t, "late-2")
	if strings.Contains(again.output(), "wb-42-done") {
		t.Errorf("the resumed connection replayed output before its cursor: %q", again.output())
	}
	again.c.Close(websocket.StatusNormalClosure, "")
	if all := tc.output() + again.output(); strings.Contains(all, secret) || strings.Contains(all, key) {
		t.Error("the terminal's output carried the workspace's password or the provider key")
	}

	// A token works outside a browser; a foreign Origin is refused, with or without a cookie.
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/account/tokens", map[string]any{"name": "term", "scope": "write", "expiresInDays": 1})
	var tok struct{ Token string }
	if json.Unmarshal(body, &tok); status != http.StatusCreated || tok.Token == "" {
		t.Fatalf("create token: %d %s", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := dialTerminal(ctx, doce.URL, term+"/connect", http.Header{"Authorization": {"Bearer " + tok.Token}}, nil)
	if err != nil {
		t.Fatalf("connect with a token: %v (%v)", err, resp)
	}
	c.Close(websocket.StatusNormalClosure, "")
	for _, hdr := range []http.Header{{"Origin": {"http://evil.example"}}, {"Origin": {"http://evil.example"}, "Authorization": {"Bearer " + tok.Token}}} {
		_, resp, err := dialTerminal(ctx, doce.URL, term+"/connect", hdr, hc.Jar)
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("a foreign Origin connected: %v %v", err, resp)
		}
	}
	// Another user gets 404, connect included.
	bob := addUser(t, doce, hc, "bob")
	if _, resp, err := dialTerminal(ctx, doce.URL, term+"/connect", http.Header{"Origin": {doce.URL}}, bob.Jar); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user connected: %v %v", err, resp)
	}
	assertNoWorkbenchAccess(t, bob, doce.URL, p.ID, "msg_x")
	status, body = apiCall(t, hc, doce.URL, "PUT", term, map[string]any{"rows": 0, "cols": 10})
	expectError(t, status, body, http.StatusBadRequest, "rows")

	if status, body := apiCall(t, hc, doce.URL, "DELETE", term, nil); status != http.StatusNoContent {
		t.Fatalf("delete terminal: %d %s", status, body)
	}
	if _, resp, err := dialTerminal(ctx, doce.URL, term+"/connect", http.Header{"Origin": {doce.URL}}, hc.Jar); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a deleted terminal connected: %v %v", err, errors.Unwrap(err))
	}
	if r := hc.responses(); strings.Contains(r, secret) || strings.Contains(r, key) {
		t.Error("a response carried the workspace's password or the provider key")
	}
}
