package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
)

// mockLLM is an OpenAI-compatible chat completions server standing in for a real LLM. It
// records what each request carried and answers "Hello from the mock.", or what a test scripted
// for the conversation (see script).
type mockLLM struct {
	URL     string // as seen from the host
	mu      sync.Mutex
	got     []llmRequest
	scripts []mockScript
}

type llmRequest struct {
	Path          string
	Authorization string
	Body          string
	At            time.Time // when it arrived
}

// hostGatewayIP is the Docker host's address on the default bridge (docker0): what
// host.docker.internal (host-gateway) resolves to in a workspace, and a host address doce can
// reach too.
func hostGatewayIP(t testing.TB) string {
	t.Helper()
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer docker.Close()
	bridge, err := docker.NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect docker bridge network: %v", err)
	}
	for _, c := range bridge.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway
		}
	}
	// Some engines leave the gateway out of IPAM: read it off the bridge interface.
	name := bridge.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("no gateway for the docker bridge: %v", err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	t.Fatalf("bridge %s has no IPv4 address", name)
	return ""
}

// startMockLLM listens on addr (an address containers can reach) until the test ends.
func startMockLLM(t testing.TB, host string) *mockLLM {
	t.Helper()
	if net.ParseIP(host) == nil {
		t.Fatalf("mock LLM: %q is not an IP address to listen on", host)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("mock LLM: listen on %s: %v", host, err)
	}
	m := &mockLLM{URL: "http://" + ln.Addr().String()}
	served.add(m.port())
	srv := &http.Server{Handler: http.HandlerFunc(m.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return m
}

// served are the ports of the stand-ins workspaces reach as host.docker.internal (mock LLMs, a
// well-known server): every doce a test starts serves them to its workspaces
// (DOCE_WORKSPACE_SERVED), the only ports on the Docker host its firewall lets them reach.
var served servedPorts

type servedPorts struct {
	mu    sync.Mutex
	ports []string
}

func (s *servedPorts) add(port string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ports = append(s.ports, port)
}

func (s *servedPorts) has(port string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.ports, port)
}

// env is DOCE_WORKSPACE_SERVED naming every stand-in started so far.
func (s *servedPorts) env() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]string, 0, len(s.ports))
	for _, p := range s.ports {
		list = append(list, "host.docker.internal:"+p)
	}
	return "DOCE_WORKSPACE_SERVED=" + strings.Join(list, ",")
}

func (m *mockLLM) port() string {
	_, p, _ := net.SplitHostPort(m.URL[len("http://"):])
	return p
}

func (m *mockLLM) requests() []llmRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]llmRequest(nil), m.got...)
}

// completionWith is the first chat completion request whose body holds marker, and whether
// one came; agentTurn asks for the agent's own turn (it offers tools), not the title OpenCode
// asks for alongside a session's first prompt.
func (m *mockLLM) completionWith(marker string, agentTurn bool) (llmRequest, bool) {
	for _, rq := range m.requests() {
		if rq.Path == "/v1/chat/completions" && strings.Contains(rq.Body, marker) && (!agentTurn || strings.Contains(rq.Body, `"tools":[`)) {
			return rq, true
		}
	}
	return llmRequest{}, false
}

func (m *mockLLM) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	m.mu.Lock()
	m.got = append(m.got, llmRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: string(body), At: time.Now()})
	m.mu.Unlock()

	switch r.URL.Path {
	case "/.well-known/opencode":
		// An organisation's OpenCode configuration: provider "corp" is this mock, its key
		// the token OpenCode holds in CORP_TOKEN.
		json.NewEncoder(w).Encode(map[string]any{
			"auth": map[string]any{"command": []string{"corp-login"}, "env": "CORP_TOKEN"},
			"config": map[string]any{"provider": map[string]any{"corp": map[string]any{
				"npm": "@ai-sdk/openai-compatible", "name": "Corp",
				"options": map[string]any{"baseURL": m.URL + "/v1", "apiKey": "{env:CORP_TOKEN}"},
				"models":  map[string]any{"mock-model": map[string]any{"name": "mock-model"}},
			}}},
		})
	case "/v1/key": // OpenRouter's key check
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"label": "mock"}})
	case "/v1/models":
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{map[string]any{"id": "mock-model", "object": "model"}}})
	case "/v1/chat/completions":
		m.complete(w, r.Context(), body)
	default:
		http.NotFound(w, r)
	}
}

// mockReply is one answer of the mock: text streamed in chunks, or tool calls for the agent to
// run. The agent then calls again with the tools' results, which gets the script's next reply.
type mockReply struct {
	Chunks    []string      // the answer's text, streamed one chunk per event
	Delay     time.Duration // between chunks (a slow answer, for abort and streaming tests)
	ToolCalls []mockToolCall
	// Sent, when set, receives each chunk's send time (its index and when it was flushed).
	Sent func(i int, at time.Time)
}

// mockToolCall asks the agent to run tool Name with Args (OpenCode's tools: bash, read, write,
// edit, grep, glob, ...).
type mockToolCall struct {
	Name string
	Args map[string]any
}

type mockScript struct {
	trigger string
	replies []mockReply
}

// script makes the mock answer a conversation whose latest user message contains trigger with
// replies, in order: the n-th completion after that message (counted by the assistant turns
// since it) gets replies[n]; after the last one the mock answers its default text. Only the
// agent's requests (those offering tools) follow scripts: OpenCode's title requests get the
// default.
func (m *mockLLM) script(trigger string, replies ...mockReply) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.scripts = append(m.scripts, mockScript{trigger: trigger, replies: replies})
}

// chatRequest is the part of a chat completion request the mock reads.
type chatRequest struct {
	Stream   bool              `json:"stream"`
	Tools    []json.RawMessage `json:"tools"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"` // a string or a list of parts
	} `json:"messages"`
}

// reply picks the scripted answer for req, or the default one.
func (m *mockLLM) reply(req chatRequest) mockReply {
	def := mockReply{Chunks: []string{"Hello from the mock."}}
	if len(req.Tools) == 0 {
		return def
	}
	last, turns := -1, 0
	for i, msg := range req.Messages {
		if msg.Role == "user" {
			last, turns = i, 0
		} else if msg.Role == "assistant" && last >= 0 {
			turns++
		}
	}
	if last < 0 {
		return def
	}
	text := string(req.Messages[last].Content) // raw JSON is enough to look for a trigger in
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.scripts) - 1; i >= 0; i-- { // the newest script wins
		sc := m.scripts[i]
		if strings.Contains(text, sc.trigger) {
			if turns < len(sc.replies) {
				return sc.replies[turns]
			}
			return def
		}
	}
	return def
}

func (m *mockLLM) complete(w http.ResponseWriter, ctx context.Context, body []byte) {
	var req chatRequest
	json.Unmarshal(body, &req)
	rep := m.reply(req)
	usage := map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
	calls := make([]any, len(rep.ToolCalls))
	for i, tc := range rep.ToolCalls {
		args, _ := json.Marshal(tc.Args)
		calls[i] = map[string]any{"index": i, "id": fmt.Sprintf("call_%d_%d", time.Now().UnixNano(), i), "type": "function",
			"function": map[string]any{"name": tc.Name, "arguments": string(args)}}
	}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": strings.Join(rep.Chunks, "")}
		if len(calls) > 0 {
			msg["tool_calls"] = calls
		}
		json.NewEncoder(w).Encode(map[string]any{
			"id": "cmpl-mock", "object": "chat.completion", "model": "mock-model",
			"choices": []any{map[string]any{"index": 0, "finish_reason": finish, "message": msg}},
			"usage":   usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	chunk := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{
			"id": "cmpl-mock", "object": "chat.completion.chunk", "model": "mock-model",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	chunk(map[string]any{"role": "assistant", "content": ""}, nil)
	for i, c := range rep.Chunks {
		if i > 0 && rep.Delay > 0 {
			select {
			case <-ctx.Done(): // the agent aborted
				return
			case <-time.After(rep.Delay):
			}
		}
		chunk(map[string]any{"content": c}, nil)
		if rep.Sent != nil {
			rep.Sent(i, time.Now())
		}
	}
	if len(calls) > 0 {
		chunk(map[string]any{"tool_calls": calls}, nil)
	}
	chunk(map[string]any{}, finish)
	b, _ := json.Marshal(map[string]any{"id": "cmpl-mock", "object": "chat.completion.chunk", "model": "mock-model", "choices": []any{}, "usage": usage})
	fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
}
