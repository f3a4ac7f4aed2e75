package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
)

// mockLLM is an OpenAI-compatible chat completions server standing in for a real LLM. It
// streams a short answer and records what each request carried.
type mockLLM struct {
	URL string // as seen from the host
	mu  sync.Mutex
	got []llmRequest
}

type llmRequest struct {
	Path          string
	Authorization string
	Body          string
}

// startMockLLM listens on addr (an address containers can reach) until the test ends.
func startMockLLM(t *testing.T, host string) *mockLLM {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("mock LLM: listen on %s: %v", host, err)
	}
	m := &mockLLM{URL: "http://" + ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(m.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return m
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

func (m *mockLLM) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	m.mu.Lock()
	m.got = append(m.got, llmRequest{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: string(body)})
	m.mu.Unlock()

	switch r.URL.Path {
	case "/v1/models":
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []any{map[string]any{"id": "mock-model", "object": "model"}}})
	case "/v1/chat/completions":
		var req struct {
			Stream bool `json:"stream"`
		}
		json.Unmarshal(body, &req)
		if !req.Stream {
			json.NewEncoder(w).Encode(map[string]any{
				"id": "cmpl-mock", "object": "chat.completion", "model": "mock-model",
				"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": "Hello from the mock."}}},
				"usage":   map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
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
		chunk(map[string]any{"content": "Hello from the mock."}, nil)
		chunk(map[string]any{}, "stop")
		b, _ := json.Marshal(map[string]any{"id": "cmpl-mock", "object": "chat.completion.chunk", "model": "mock-model", "choices": []any{},
			"usage": map[string]any{"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}})
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
	default:
		http.NotFound(w, r)
	}
}
