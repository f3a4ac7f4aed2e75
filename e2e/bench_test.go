package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// The setup targets compare doce's ProjectSetup with the same steps run by hand:
// docker run → health → PUT /auth → POST /session → prompt_async. Run with `make bench`.

func BenchmarkHandRun1(b *testing.B)  { benchHandRun(b, 1) }
func BenchmarkHandRun20(b *testing.B) { benchHandRun(b, 20) }
func BenchmarkSetup1(b *testing.B)    { benchSetup(b, 1) }
func BenchmarkSetup20(b *testing.B)   { benchSetup(b, 20) }

// benchHandRun reports the mean wall time of one hand-run setup when n run at once.
func benchHandRun(b *testing.B, n int) {
	stack := requireStack(b)
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		durations := make([]time.Duration, n)
		var wg sync.WaitGroup
		var ids sync.Map
		for j := 0; j < n; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, id, err := handRun(docker, stack.OpenCodeImage)
				if id != "" {
					ids.Store(id, true)
				}
				if err != nil {
					b.Error(err)
				}
				durations[j] = d
			}()
		}
		wg.Wait()
		b.StopTimer()
		ids.Range(func(k, _ any) bool {
			docker.ContainerRemove(context.Background(), k.(string), container.RemoveOptions{Force: true, RemoveVolumes: true})
			return true
		})
		for _, d := range durations {
			total += d
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/setup")
}

func handRun(docker *dockerclient.Client, image string) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	password := base64.RawURLEncoding.EncodeToString(store.RandomToken(24))
	port := nat.Port("4096/tcp")
	c, err := docker.ContainerCreate(ctx,
		&container.Config{Image: image, Env: []string{"OPENCODE_SERVER_PASSWORD=" + password}, ExposedPorts: nat.PortSet{port: {}}},
		// Name lookups go to this machine, where nothing answers: as doce's test workspaces.
		&container.HostConfig{PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1"}}}, DNS: []string{testDNS}},
		&network.NetworkingConfig{}, nil, "")
	if err != nil {
		return 0, "", err
	}
	if err := docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return 0, c.ID, err
	}
	ci, err := docker.ContainerInspect(ctx, c.ID)
	if err != nil {
		return 0, c.ID, err
	}
	oc := opencode.New("http://127.0.0.1:"+ci.NetworkSettings.Ports[port][0].HostPort, password, nil)
	for {
		if h, err := oc.Health(ctx, 2*time.Second); err == nil && h.Healthy {
			break
		}
		if ctx.Err() != nil {
			return 0, c.ID, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := oc.SetAuth(ctx, "custom", opencode.Auth{Type: "api", Key: "sk-bench"}); err != nil {
		return 0, c.ID, err
	}
	s, err := oc.CreateSession(ctx, "bench")
	if err != nil {
		return 0, c.ID, err
	}
	if err := oc.PromptAsync(ctx, s.ID, opencode.Model{ProviderID: "custom", ModelID: "mock-model"}, "hello"); err != nil {
		return 0, c.ID, err
	}
	return time.Since(start), c.ID, nil
}

// benchSetup reports the mean wall time from POST /api/v1/projects to ProjectSetup completing,
// when n are created at once.
func benchSetup(b *testing.B, n int) {
	stack := requireStack(b)
	doce := startDoce(b, stack, fmt.Sprintf("bench-%d", time.Now().UnixNano()))
	hc := newClient(b)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v", err)
	}
	if status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-bench", "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model"}); status != http.StatusCreated {
		b.Fatalf("connect: %d %s", status, body)
	}
	ws, err := workspace.NewManager("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	tc, err := client.Dial(client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{}})
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		durations := make([]time.Duration, n)
		ids := make([]string, n)
		var wg sync.WaitGroup
		for j := 0; j < n; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/projects",
					map[string]any{"prompt": "hello", "providerId": "custom", "modelId": "mock-model"})
				if status != http.StatusCreated {
					b.Errorf("create: %d %s", status, body)
					return
				}
				var created struct {
					Project struct{ ID, WorkflowID string }
				}
				json.Unmarshal(body, &created)
				ids[j] = created.Project.ID
				// Wait on the workflow itself: polling the API would load the machine the
				// setups run on.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if err := tc.GetWorkflow(ctx, created.Project.WorkflowID, "").Get(ctx, nil); err != nil {
					b.Errorf("setup %s: %v", created.Project.ID, err)
					return
				}
				durations[j] = time.Since(start)
			}()
		}
		wg.Wait()
		b.StopTimer()
		for _, id := range ids {
			if id != "" {
				ws.Down(context.Background(), id)
			}
		}
		for _, d := range durations {
			total += d
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/setup")
}

// quietLogger keeps the Temporal client's own logging out of benchmark output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// BenchmarkProjectPage200 loads the page of a ready project at 200 requests/s, 2,000 loads in
// 10 s per iteration, and reports the latency's p50 and p99 (target: p99 under 50 ms). Each
// request is sent on schedule whether or not the earlier ones answered, as users would.
func BenchmarkProjectPage200(b *testing.B) {
	const rate, count = 200, 2000
	stack := requireStack(b)
	doce := startDoce(b, stack, fmt.Sprintf("bench-page-%d", time.Now().UnixNano()))
	hc := newClient(b)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v", err)
	}
	if status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-bench", "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model"}); status != http.StatusCreated {
		b.Fatalf("connect: %d %s", status, body)
	}
	status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": "hello", "providerId": "custom", "modelId": "mock-model"})
	if status != http.StatusCreated {
		b.Fatalf("create: %d %s", status, body)
	}
	var created struct{ Project struct{ ID string } }
	json.Unmarshal(body, &created)
	id := created.Project.ID
	b.Cleanup(func() { downWorkspace(id) })
	deadline := time.Now().Add(5 * time.Minute)
	for {
		_, body := apiCall(b, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
		if strings.Contains(string(body), `"status":"ready"`) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("project not ready: %s", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A plain client sharing the session cookie: the recording one keeps every body.
	page := &http.Client{Jar: hc.Jar, Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var p50, p99 time.Duration
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, count)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / rate)
		for i := range count {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				resp, err := page.Get(doce.URL + "/projects/" + id)
				if err != nil {
					b.Errorf("GET page: %v", err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("GET page: %d", resp.StatusCode)
				}
				lat[i] = time.Since(start)
			}()
		}
		tick.Stop()
		wg.Wait()
		slices.Sort(lat)
		p50, p99 = lat[count/2], lat[count*99/100]
	}
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
