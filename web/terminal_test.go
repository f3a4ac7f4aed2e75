package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
)

const fakeServerPassword = "pw-of-the-workspace"

type fixedSecret struct{}

func (fixedSecret) Decrypt(context.Context, string, string) ([]byte, error) {
	return []byte(fakeServerPassword), nil
}

// fakePTYServer is the part of OpenCode's API a terminal needs: the hub's reads, GET/POST
// /pty, and a terminal's WebSocket, which replays "past output", sends its cursor frame and
// echoes input. It records the environment terminals were made with.
type fakePTYServer struct {
	mu   sync.Mutex
	env  map[string]string
	done chan struct{} // closed at the test's end: the hub's event stream ends with it
}

func (f *fakePTYServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pw, ok := r.BasicAuth(); !ok || pw != fakeServerPassword {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch {
	case r.URL.Path == "/event":
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-f.done:
		}
	case r.URL.Path == "/session/status":
		fmt.Fprint(w, `{}`)
	case r.URL.Path == "/permission", r.URL.Path == "/question":
		fmt.Fprint(w, `[]`)
	case r.URL.Path == "/pty" && r.Method == http.MethodPost:
		var in struct{ Env map[string]string }
		json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.env = in.Env
		f.mu.Unlock()
		fmt.Fprint(w, `{"id":"pty_fake1","title":"Terminal","command":"/bin/bash","cwd":"/workspace","status":"running","pid":7}`)
	case r.URL.Path == "/pty/pty_fake1":
		fmt.Fprint(w, `{"id":"pty_fake1","title":"Terminal","status":"running"}`)
	case r.URL.Path == "/pty/pty_fake1/connect":
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		past := "past output\r\n"
		if cursor < len(past) && cursor >= 0 {
			c.Write(ctx, websocket.MessageText, []byte(past[cursor:]))
		}
		c.Write(ctx, websocket.MessageBinary, append([]byte{0}, []byte(fmt.Sprintf(`{"cursor":%d}`, len(past)))...))
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if string(b) == "exit\r" {
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
			c.Write(ctx, typ, append([]byte("echo:"), b...))
		}
	default:
		http.NotFound(w, r)
	}
}

func TestTerminalRelay(t *testing.T) {
	fake := &fakePTYServer{done: make(chan struct{})}
	oc := httptest.NewServer(fake)
	t.Cleanup(oc.Close)
	t.Cleanup(func() { close(fake.done) })
	port, _ := strconv.Atoi(oc.URL[strings.LastIndex(oc.URL, ":")+1:])
	e := newEnvWith(t, &agent.Connector{Secrets: fixedSecret{}, Host: "127.0.0.1", HTTP: &http.Client{Timeout: 5 * time.Second}})
	owner := e.user(t, "owner")
	other := e.user(t, "other")
	ctx := context.Background()
	u, err := e.store.UserByUsername(ctx, "owner")
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := e.store.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "p", Slug: "p", Prompt: "x", ProviderID: "custom", ModelID: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.SetProjectPasswordOnce(ctx, p.ID, "vault:v1:x"); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordPorts(ctx, p.ID, port, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.store.RecordSetupProgress(ctx, p.ID, "", status.Ready, "", ""); err != nil {
		t.Fatal(err)
	}
	base := e.srv.URL + "/api/v1/projects/" + p.ID + "/terminals"

	resp, err := owner.Post(base, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if body := read(t, resp); resp.StatusCode != http.StatusCreated || !strings.Contains(body, `"id":"pty_fake1"`) {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	fake.mu.Lock()
	if v, ok := fake.env["OPENCODE_SERVER_PASSWORD"]; !ok || v != "" {
		t.Errorf("the terminal was made without blanking the server password: %v", fake.env)
	}
	fake.mu.Unlock()

	dial := func(c *http.Client, path string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path, &websocket.DialOptions{HTTPClient: c, HTTPHeader: hdr})
	}
	own := http.Header{"Origin": {e.srv.URL}}
	conn, resp, err := dial(owner, "/pty_fake1/connect?cursor=5", own)
	if err != nil {
		t.Fatalf("connect: %v %v", err, resp)
	}
	next := func() (websocket.MessageType, string) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		typ, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return typ, string(b)
	}
	if typ, s := next(); typ != websocket.MessageText || s != "output\r\n" {
		t.Errorf("replay from cursor 5 = %v %q", typ, s)
	}
	if typ, s := next(); typ != websocket.MessageBinary || s != "\x00"+`{"cursor":13}` {
		t.Errorf("cursor frame = %v %q", typ, s)
	}
	conn.Write(ctx, websocket.MessageText, []byte("ls\r"))
	if _, s := next(); s != "echo:ls\r" {
		t.Errorf("echo = %q", s)
	}
	// The shell's end closes the browser's side with the same code.
	conn.Write(ctx, websocket.MessageText, []byte("exit\r"))
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := conn.Read(rctx); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("after exit: %v, want a normal close", err)
	}

	for _, tc := range []struct {
		name   string
		c      *http.Client
		path   string
		hdr    http.Header
		status int
	}{
		{"a foreign origin", owner, "/pty_fake1/connect", http.Header{"Origin": {"http://evil.example"}}, http.StatusForbidden},
		{"another user", other, "/pty_fake1/connect", own, http.StatusNotFound},
		{"an unknown terminal", owner, "/pty_nope/connect", own, http.StatusNotFound},
		{"a bad cursor", owner, "/pty_fake1/connect?cursor=x", own, http.StatusBadRequest},
	} {
		_, resp, err := dial(tc.c, tc.path, tc.hdr)
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Errorf("%s: %v %v, want %d", tc.name, err, resp, tc.status)
		} else if b := read(t, resp); strings.Contains(b, fakeServerPassword) {
			t.Errorf("%s: the answer carries the password", tc.name)
		}
	}
}
