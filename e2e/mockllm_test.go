package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
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
func startMockLLM(t *testing.T, host string) *mockLLM {
	t.Helper()
	if net.ParseIP(host) == nil {
		t.Fatalf("mock LLM: %q is not an IP address to listen on", host)
	}
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
