package e2e

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/store"
)

// The conversation through doce's API against real workspaces (docs/conversation.md): the
// agent's answers come back through GET messages and the stream, permissions and aborts reach
// OpenCode, a reconnect resumes without loss or repeat, and nobody but the owner gets in.

// sseEvent is one server-sent event as the test received it.
type sseEvent struct {
	ID, Type string
	Data     json.RawMessage
	At       time.Time
}

// sseStream reads a stream endpoint in the background.
type sseStream struct {
	mu     sync.Mutex
	events []sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func openStream(t *testing.T, hc *recordingClient, base, path, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	// The recording client's timeout would cut the stream: the same jar, no timeout, no recording.
	resp, err := (&http.Client{Jar: hc.Jar}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("open stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Type != "" {
					ev.At = time.Now()
					s.mu.Lock()
					s.events = append(s.events, ev)
					s.mu.Unlock()
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = json.RawMessage(line[6:])
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sseStream) close() {
	s.cancel()
	<-s.done
}

func (s *sseStream) all() []sseEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// waitEvent waits for an event of typ whose data contains each of subs, and returns it.
func (s *sseStream) waitEvent(t *testing.T, typ string, timeout time.Duration, subs ...string) sseEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, ev := range s.all() {
			if ev.Type != typ {
				continue
			}
			ok := true
			for _, sub := range subs {
				ok = ok && strings.Contains(string(ev.Data), sub)
			}
			if ok {
				return ev
			}
		}
		if time.Now().After(deadline) {
			var types []string
			for _, ev := range s.all() {
				types = append(types, ev.Type)
			}
			t.Fatalf("no %s event with %q within %s; got %v", typ, subs, timeout, types)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deltaText is the text the stream's deltas of the session carry, in order, with when each
// arrived.
type delta struct {
	text string
	at   time.Time
	id   string
}

func deltasOf(evs []sseEvent, sessionID string) []delta {
	var out []delta
	for _, ev := range evs {
		if ev.Type != "message.part.delta" {
			continue
		}
		var d struct{ SessionID, Field, Delta string }
		json.Unmarshal(ev.Data, &d)
		if d.SessionID == sessionID && d.Field == "text" {
			out = append(out, delta{d.Delta, ev.At, ev.ID})
		}
	}
	return out
}

func joinDeltas(ds []delta) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.text)
	}
	return b.String()
}

type conversation struct {
	SessionID string
	Status    struct{ Type string }
	Messages  []struct {
		Info struct {
			ID, Role string
			Error    *struct{ Name, Message string }
		}
		Parts []struct {
			ID, Type, Text, Tool string
			State                *struct{ Status, Output string }
		}
	}
	Permissions []struct{ ID string }
	Cursor      string
}

func (c conversation) assistantText() string {
	var b strings.Builder
	for _, m := range c.Messages {
		if m.Info.Role != "assistant" {
			continue
		}
		for _, p := range m.Parts {
			if p.Type == "text" {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String()
}

func getConversation(t *testing.T, hc *recordingClient, base, projectID string) conversation {
	t.Helper()
	status, body := apiCall(t, hc, base, "GET", "/api/v1/projects/"+projectID+"/messages", nil)
	if status != http.StatusOK {
		t.Fatalf("GET messages: %d %s", status, body)
	}
	var c conversation
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func waitAnswer(t *testing.T, hc *recordingClient, base, projectID, want string) conversation {
	t.Helper()
	var c conversation
	waitFor(t, "the agent's answer "+want, 3*time.Minute, func() (bool, error) {
		// A cold hub may need longer than doce's wait to reach a busy workspace: 503 is "not yet".
		status, body := apiCall(t, hc, base, "GET", "/api/v1/projects/"+projectID+"/messages", nil)
		if status == http.StatusServiceUnavailable {
			return false, fmt.Errorf("503 %s", body)
		}
		c = getConversation(t, hc, base, projectID)
		raw, _ := json.Marshal(c.Messages)
		return strings.Contains(c.assistantText(), want) && c.Status.Type == "idle", fmt.Errorf("status %s, messages %s", c.Status.Type, raw)
	})
	return c
}

func send(t *testing.T, hc *recordingClient, base, projectID, text string) {
	t.Helper()
	if status, body := apiCall(t, hc, base, "POST", "/api/v1/projects/"+projectID+"/messages", map[string]any{"text": text}); status != http.StatusAccepted {
		t.Fatalf("POST messages: %d %s", status, body)
	}
}

// bearersOf lists the Authorization headers of the agent's completions that carried marker.
func bearersOf(llm *mockLLM, marker string) []string {
	var out []string
	for _, r := range llm.requests() {
		if r.Path == "/v1/chat/completions" && strings.Contains(r.Body, marker) {
			out = append(out, r.Authorization)
		}
	}
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func TestConversationEndToEnd(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	// The agent asks before editing files, so the permission round trip can be tested (edit
	// rather than bash: the write tool needs no shell in the workspace image).
	doce := startDoce(t, stack, fmt.Sprintf("e2e-chat-%d", time.Now().UnixNano()), "DOCE_AGENT_ASK=edit")
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	key := "sk-chat-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model,mock-large"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	const prompt = "First prompt: say hello."
	p := createProject(t, hc, doce, prompt)
	waitStatus(t, hc, doce, p.ID, "ready", 8*time.Minute) // OpenCode starts in minutes on a loaded machine
	base := "/api/v1/projects/" + p.ID

	// The first prompt's answer comes back through GET messages.
	conv := waitAnswer(t, hc, doce.URL, p.ID, "Hello from the mock.")
	if conv.SessionID == "" || conv.Cursor == "" {
		t.Fatalf("conversation without session or cursor: %+v", conv)
	}

	// A second message streams its answer; every token is timed from the mock to this test.
	stream := openStream(t, hc, doce.URL, base+"/stream?after="+url.QueryEscape(conv.Cursor), "")
	var chunks []string
	for i := range 60 {
		chunks = append(chunks, fmt.Sprintf("tok%02d ", i))
	}
	var sentMu sync.Mutex
	sent := make([]time.Time, len(chunks))
	llm.script("Second message", mockReply{Chunks: chunks, Delay: 15 * time.Millisecond, Sent: func(i int, at time.Time) {
		sentMu.Lock()
		sent[i] = at
		sentMu.Unlock()
	}})
	send(t, hc, doce.URL, p.ID, "Second message: stream please.")
	stream.waitEvent(t, "session.idle", 60*time.Second, conv.SessionID)
	want := strings.Join(chunks, "")
	ds := deltasOf(stream.all(), conv.SessionID)
	if got := joinDeltas(ds); got != want {
		t.Fatalf("streamed text = %q, want %q", got, want)
	}
	// Each chunk is received when the deltas so far first cover it.
	var lat []time.Duration
	covered, di := 0, 0
	for i, c := range chunks {
		covered += len(c)
		for ; di < len(ds); di++ {
			if len(joinDeltas(ds[:di+1])) >= covered {
				break
			}
		}
		sentMu.Lock()
		lat = append(lat, ds[di].at.Sub(sent[i]))
		sentMu.Unlock()
	}
	t.Logf("token latency, mock to SSE receipt over %d tokens: p50 %s, p99 %s, max %s",
		len(lat), percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 1))
	// The warm snapshot holds the whole answer too, and the mock saw the key on both prompts.
	if c := waitAnswer(t, hc, doce.URL, p.ID, want); !strings.Contains(c.assistantText(), "Hello from the mock.") {
		t.Errorf("the first answer is gone from the snapshot: %q", c.assistantText())
	}
	for _, marker := range []string{prompt, "Second message"} {
		bs := bearersOf(llm, marker)
		if len(bs) == 0 {
			t.Errorf("the mock saw no completion for %q", marker)
		}
		for _, b := range bs {
			if b != "Bearer "+key {
				t.Errorf("completion for %q carried %q, want the user's key", marker, b)
			}
		}
	}

	// A permission the agent asks for, answered through the API: the tool runs, the agent goes on.
	llm.script("Please write", mockReply{ToolCalls: []mockToolCall{{Name: "write", Args: map[string]any{"filePath": "/workspace/asked.txt", "content": "written after permission"}}}},
		mockReply{Chunks: []string{"The file is written."}})
	send(t, hc, doce.URL, p.ID, "Please write the file.")
	asked := stream.waitEvent(t, "permission.asked", 60*time.Second, conv.SessionID)
	var perm struct{ ID, Permission string }
	json.Unmarshal(asked.Data, &perm)
	if perm.Permission != "edit" {
		t.Fatalf("permission.asked = %s", asked.Data)
	}
	if c := getConversation(t, hc, doce.URL, p.ID); len(c.Permissions) != 1 || c.Permissions[0].ID != perm.ID {
		t.Errorf("GET messages does not list the pending permission: %+v", c.Permissions)
	}
	status, body := apiCall(t, hc, doce.URL, "POST", base+"/permissions/"+perm.ID, map[string]any{"reply": "sometimes"})
	expectError(t, status, body, http.StatusBadRequest, `Reply "once"`)
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/permissions/per_unknown123", map[string]any{"reply": "once"})
	expectError(t, status, body, http.StatusNotFound, "No such permission request")
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/permissions/"+perm.ID, map[string]any{"reply": "once"}); status != http.StatusAccepted {
		t.Fatalf("reply: %d %s", status, body)
	}
	stream.waitEvent(t, "permission.replied", 30*time.Second, perm.ID)
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/permissions/"+perm.ID, map[string]any{"reply": "once"})
	expectError(t, status, body, http.StatusConflict, "answered already")
	stream.waitEvent(t, "message.part.updated", 30*time.Second, `"tool":"write"`, `"status":"completed"`)
	waitAnswer(t, hc, doce.URL, p.ID, "The file is written.")

	// Abort stops a long answer: the session goes idle long before the answer would end.
	long := make([]string, 100)
	for i := range long {
		long[i] = fmt.Sprintf("slow%03d ", i)
	}
	llm.script("Long answer", mockReply{Chunks: long, Delay: 100 * time.Millisecond}) // 10 s in all
	before := len(stream.all())
	send(t, hc, doce.URL, p.ID, "Long answer please.")
	waitFor(t, "the long answer to start", 30*time.Second, func() (bool, error) {
		return strings.Contains(joinDeltas(deltasOf(stream.all()[before:], conv.SessionID)), "slow003"), nil
	})
	abortAt := time.Now()
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/abort", nil); status != http.StatusAccepted {
		t.Fatalf("abort: %d %s", status, body)
	}
	waitFor(t, "the session to go idle after abort", 5*time.Second, func() (bool, error) {
		c := getConversation(t, hc, doce.URL, p.ID)
		return c.Status.Type == "idle", fmt.Errorf("status %s", c.Status.Type)
	})
	time.Sleep(500 * time.Millisecond)
	got := joinDeltas(deltasOf(stream.all()[before:], conv.SessionID))
	if strings.Contains(got, "slow099") || strings.Count(got, "slow") > 60 {
		t.Errorf("the answer went on after abort (%s after it): %q", time.Since(abortAt), got)
	}

	// A reconnect in the middle of a streamed answer shows it whole, once.
	var rchunks []string
	for i := range 40 {
		rchunks = append(rchunks, fmt.Sprintf("re%02d ", i))
	}
	llm.script("Reconnect test", mockReply{Chunks: rchunks, Delay: 30 * time.Millisecond})
	first := openStream(t, hc, doce.URL, base+"/stream", "")
	send(t, hc, doce.URL, p.ID, "Reconnect test now.")
	waitFor(t, "a few tokens", 30*time.Second, func() (bool, error) {
		return len(deltasOf(first.all(), conv.SessionID)) >= 5, nil
	})
	first.close()
	part1 := deltasOf(first.all(), conv.SessionID)
	evs := first.all()
	lastID := evs[len(evs)-1].ID
	time.Sleep(300 * time.Millisecond) // tokens go by while the tab is away
	second := openStream(t, hc, doce.URL, base+"/stream", lastID)
	second.waitEvent(t, "session.idle", 30*time.Second, conv.SessionID)
	if evs := second.all(); len(evs) > 0 && evs[0].Type == "reset" {
		t.Fatalf("the resume from %s was reset", lastID)
	}
	if got, want := joinDeltas(part1)+joinDeltas(deltasOf(second.all(), conv.SessionID)), strings.Join(rchunks, ""); got != want {
		t.Errorf("answer across the reconnect = %q, want %q", got, want)
	}
	// An id from another doce process is reset.
	stale := openStream(t, hc, doce.URL, base+"/stream", "deadbeef.5")
	stale.waitEvent(t, "reset", 5*time.Second)

	// Sessions: a new one, listed, and usable with ?session=.
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/sessions", map[string]any{"title": "Second thread"})
	var created struct{ Session struct{ ID, Title string } }
	json.Unmarshal(body, &created)
	if status != http.StatusCreated || created.Session.ID == "" {
		t.Fatalf("new session: %d %s", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "GET", base+"/sessions", nil)
	if status != http.StatusOK || !strings.Contains(string(body), created.Session.ID) || !strings.Contains(string(body), `"current":"`+conv.SessionID) {
		t.Fatalf("sessions: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/messages?session="+created.Session.ID, map[string]any{"text": "Hello second thread"}); status != http.StatusAccepted {
		t.Fatalf("send in the new session: %d %s", status, body)
	}
	waitFor(t, "the new session's answer", 60*time.Second, func() (bool, error) {
		_, body := apiCall(t, hc, doce.URL, "GET", base+"/messages?session="+created.Session.ID, nil)
		return strings.Contains(string(body), "Hello from the mock."), fmt.Errorf("%s", body)
	})

	// Models: the connection's own list for a custom provider; another model is accepted.
	status, body = apiCall(t, hc, doce.URL, "GET", base+"/models", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"mock-large"`) {
		t.Fatalf("models: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "POST", base+"/messages", map[string]any{"text": "On the large model", "modelId": "mock-large"}); status != http.StatusAccepted {
		t.Fatalf("send with modelId: %d %s", status, body)
	}

	// Bad input is a 4xx a person can act on.
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/messages", map[string]any{"text": "   "})
	expectError(t, status, body, http.StatusBadRequest, "Write a message")
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/messages", map[string]any{"text": "hi", "modelId": "gpt-nope"})
	expectError(t, status, body, http.StatusBadRequest, "does not offer that model")
	status, body = apiCall(t, hc, doce.URL, "GET", base+"/messages?session=ses_doesnotexist", nil)
	expectError(t, status, body, http.StatusNotFound, "No such session")
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/messages?session=ses_doesnotexist", map[string]any{"text": "hi"})
	expectError(t, status, body, http.StatusNotFound, "No such session")
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/questions/que_unknown1", map[string]any{"answers": [][]string{{"yes"}}})
	expectError(t, status, body, http.StatusNotFound, "No such question request")
	status, body = apiCall(t, hc, doce.URL, "POST", base+"/questions/que_unknown1", map[string]any{})
	expectError(t, status, body, http.StatusBadRequest, "one list per question")
	req, _ := http.NewRequest(http.MethodPost, doce.URL+base+"/messages", strings.NewReader("{not json"))
	req.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed JSON: %v %v", resp, err)
	}

	// Another user gets 404 on every route, the stream included.
	bob := addUser(t, doce, hc, "bob")
	assertNoAccess(t, bob, doce.URL, p.ID, perm.ID)

	// Nothing secret came back in any answer: not the key, not the workspace's password.
	if strings.Contains(hc.responses(), key) {
		t.Error("a response carried the provider key")
	}
	for _, ev := range stream.all() {
		if strings.Contains(string(ev.Data), key) || strings.Contains(string(ev.Data), "OPENCODE_SERVER_PASSWORD") {
			t.Errorf("a stream event carried a secret: %s", ev.Type)
		}
	}
}

// addUser creates a plain user in doce's database and signs them in.
func addUser(t *testing.T, doce *doceProcess, _ *recordingClient, name string) *recordingClient {
	t.Helper()
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte(name+"'s password"), bcrypt.MinCost)
	if err := st.CreateUser(context.Background(), &store.User{Username: name, PasswordHash: string(hash), Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/login", url.Values{"username": {name}, "password": {name + "'s password"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("%s login: %v", name, err)
	}
	return hc
}

// assertNoAccess checks hc gets 404 on every conversation route of project id, under /api/v1
// and under the page's paths.
func assertNoAccess(t *testing.T, hc *recordingClient, base, id, requestID string) {
	t.Helper()
	for _, prefix := range []string{"/api/v1/projects/", "/projects/"} {
		for _, r := range []struct {
			method, path string
			body         any
		}{
			{"GET", "/messages", nil},
			{"POST", "/messages", map[string]any{"text": "let me in"}},
			{"POST", "/abort", nil},
			{"GET", "/sessions", nil},
			{"POST", "/sessions", map[string]any{}},
			{"POST", "/permissions/" + requestID, map[string]any{"reply": "always"}},
			{"POST", "/questions/que_x", map[string]any{"reject": true}},
			{"GET", "/models", nil},
			{"GET", "/stream", nil},
		} {
			status, body := apiCall(t, hc, base, r.method, prefix+id+r.path, r.body)
			if status != http.StatusNotFound {
				t.Errorf("%s %s%s%s by another user: %d %s, want 404", r.method, prefix, id, r.path, status, body)
			}
		}
	}
}

// TestConversationTwoProviders: one user, two providers (a custom one and an organisation's
// well-known one, each on its own mock with its own key), a project on each: each conversation
// reaches its own provider and key. The admin gets 404 on the user's projects.
func TestConversationTwoProviders(t *testing.T) {
	stack := requireStack(t)
	gw := hostGatewayIP(t)
	llmA, llmB := startMockLLM(t, gw), startMockLLM(t, gw)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-chat2-%d", time.Now().UnixNano()))
	adminc := newClient(t)
	if resp, err := adminc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %v", err)
	}
	carol := addUser(t, doce, adminc, "carol")
	keyA := "sk-a-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	tokenB := "corp-b-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	if status, body := apiCall(t, carol, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": keyA, "baseURL": "http://host.docker.internal:" + llmA.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect custom: %d %s", status, body)
	}
	if status, body := apiCall(t, carol, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "wellknown", "wellKnownUrl": llmB.URL, "token": tokenB}); status != http.StatusCreated {
		t.Fatalf("connect well-known: %d %s", status, body)
	}
	pa := createProjectOn(t, carol, doce, "custom", "mock-model", "Project A first prompt")
	pb := createProjectOn(t, carol, doce, "wellknown", "corp/mock-model", "Project B first prompt")
	waitStatus(t, carol, doce, pa.ID, "ready", 8*time.Minute)
	waitStatus(t, carol, doce, pb.ID, "ready", 8*time.Minute)
	waitAnswer(t, carol, doce.URL, pa.ID, "Hello from the mock.")
	waitAnswer(t, carol, doce.URL, pb.ID, "Hello from the mock.")

	llmA.script("Only for A", mockReply{Chunks: []string{"Answer ", "from ", "A."}})
	llmB.script("Only for B", mockReply{Chunks: []string{"Answer ", "from ", "B."}})
	send(t, carol, doce.URL, pa.ID, "Only for A, please.")
	send(t, carol, doce.URL, pb.ID, "Only for B, please.")
	if c := waitAnswer(t, carol, doce.URL, pa.ID, "Answer from A."); strings.Contains(c.assistantText(), "from B") {
		t.Errorf("project A shows B's answer: %q", c.assistantText())
	}
	if c := waitAnswer(t, carol, doce.URL, pb.ID, "Answer from B."); strings.Contains(c.assistantText(), "from A") {
		t.Errorf("project B shows A's answer: %q", c.assistantText())
	}
	for _, tc := range []struct {
		llm           *mockLLM
		want, markers []string
		other         string
	}{
		{llmA, []string{"Bearer " + keyA}, []string{"Project A first prompt", "Only for A"}, "Only for B"},
		{llmB, []string{"Bearer " + tokenB}, []string{"Project B first prompt", "Only for B"}, "Only for A"},
	} {
		for _, marker := range tc.markers {
			bs := bearersOf(tc.llm, marker)
			if len(bs) == 0 {
				t.Errorf("%s never reached its mock", marker)
			}
			for _, b := range bs {
				if b != tc.want[0] {
					t.Errorf("%s reached its mock with %q, want its own key", marker, b)
				}
			}
		}
		if bs := bearersOf(tc.llm, tc.other); len(bs) > 0 {
			t.Errorf("%q reached the other project's mock", tc.other)
		}
	}
	// Admins are nobody else's owner: 404 on every route, the stream included.
	assertNoAccess(t, adminc, doce.URL, pa.ID, "per_x")
}
