package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	dockerclient "github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/workspace"
)

// The setup targets compare doce's ProjectSetup with the same steps run by hand on the same
// image with the same container settings: the project's network, the container with its
// opencode.json and AGENTS.md, start → health → PUT /auth → POST /session → prompt_async. The two alternate within one benchmark run (the order flips every round), so
// the machine's drift over minutes hits both alike. Run with `BENCH=Setup make bench`.

func BenchmarkSetup1(b *testing.B)  { benchSetupVsHand(b, 1) }
func BenchmarkSetup20(b *testing.B) { benchSetupVsHand(b, 20) }

// Settings doce gives a workspace by default (DOCE_WORKSPACE_MEMORY, DOCE_WORKSPACE_PIDS).
const (
	benchMemory = 1 << 30
	benchPids   = 1024
)

// benchSetupVsHand reports the mean wall time of one setup through doce and of one by hand,
// with n at once, and their ratio; each round's means are logged as the two series.
func benchSetupVsHand(b *testing.B, n int) {
	stack := requireStack(b)
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	d := newDoceSetups(b, stack)
	defer d.close()
	// Once, before timing: a hand-made container carries the settings of doce's.
	d.assertSameSettings(b, docker)

	var doceTotal, handTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var doceMean, handMean time.Duration
		if i%2 == 0 {
			doceMean = d.round(b, n)
			handMean = handRound(b, docker, stack.OpenCodeImage, n)
		} else {
			handMean = handRound(b, docker, stack.OpenCodeImage, n)
			doceMean = d.round(b, n)
		}
		b.Logf("round %d, %d at once: doce %s, hand %s per setup", i+1, n, doceMean.Round(time.Millisecond), handMean.Round(time.Millisecond))
		doceTotal += doceMean
		handTotal += handMean
	}
	b.ReportMetric(float64(doceTotal.Milliseconds())/float64(b.N), "doce-ms/setup")
	b.ReportMetric(float64(handTotal.Milliseconds())/float64(b.N), "hand-ms/setup")
	if handTotal > 0 {
		b.ReportMetric(float64(doceTotal)/float64(handTotal), "doce/hand")
	}
}

// handRound runs n hand setups at once and returns their mean; the containers are removed
// untimed.
func handRound(b *testing.B, docker *dockerclient.Client, image string, n int) time.Duration {
	b.Helper()
	durations := make([]time.Duration, n)
	objs := make([]handObjects, n)
	config := handConfig(b)
	var wg sync.WaitGroup
	for j := 0; j < n; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, o, err := handRun(docker, image, config)
			objs[j], durations[j] = o, d
			if err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	defer b.StartTimer()
	for _, o := range objs {
		o.remove(docker)
	}
	return mean(durations)
}

// handContainer is what a person would type as docker run for a workspace, flag for flag the
// settings doce's workspace.Manager uses: the agent's user, no capabilities, no new
// privileges, a read-only root with the project and home as volumes and a small /tmp, the
// memory and pids limits, OpenCode's and the preview's ports on loopback, the project's own
// network.
func handContainer(image, password, network string) (*container.Config, *container.HostConfig) {
	port, preview := nat.Port("4096/tcp"), nat.Port("3000/tcp")
	pids := int64(benchPids)
	return &container.Config{Image: image, User: "1000:1000", Env: []string{"OPENCODE_SERVER_PASSWORD=" + password, "PORT=3000", "OPENCODE_DISABLE_MODELS_FETCH=true"},
			ExposedPorts: nat.PortSet{port: {}, preview: {}}, WorkingDir: "/workspace"},
		&container.HostConfig{
			NetworkMode:    container.NetworkMode(network),
			PortBindings:   nat.PortMap{port: {{HostIP: "127.0.0.1"}}, preview: {{HostIP: "127.0.0.1"}}},
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges"},
			ReadonlyRootfs: true,
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Target: "/workspace"},
				{Type: mount.TypeVolume, Target: workspace.HomeDir}},
			Tmpfs:      map[string]string{"/tmp": "rw,exec,nosuid,nodev,mode=1777,size=256m"},
			Resources:  container.Resources{Memory: benchMemory, PidsLimit: &pids},
			ExtraHosts: []string{"host.docker.internal:host-gateway"},
			// Name lookups go to this machine, where nothing answers: as doce's test workspaces.
			DNS: []string{testDNS},
		}
}

// handConfig is the opencode.json doce writes for the benchmark's projects.
func handConfig(b *testing.B) []byte {
	cfg, err := agent.Config(&store.Project{ProviderID: "custom", ModelID: "mock-model"},
		&store.ProviderConnection{ProviderID: "custom", AuthType: store.AuthAPI, BaseURL: benchBaseURL, ModelIDs: "mock-model"}, nil, benchGatewayURL)
	if err != nil {
		b.Fatal(err)
	}
	return cfg
}

// benchBaseURL and benchGatewayURL are the custom provider the benchmark's projects use and
// the gateway they reach it through; nothing answers there, as no setup step calls the LLM.
const (
	benchBaseURL    = "http://host.docker.internal:9/v1"
	benchGatewayURL = "http://host.docker.internal:9"
)

// handRun does by hand what ProjectSetup does: the project's network, its container with
// opencode.json and AGENTS.md written in, start, health, PUT /auth, POST /session,
// prompt_async. It returns the time taken and what to remove.
func handRun(docker *dockerclient.Client, image string, config []byte) (time.Duration, handObjects, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var objs handObjects
	password := base64.RawURLEncoding.EncodeToString(store.RandomToken(24))
	objs.network = "bench-hand-" + store.NewID()
	if _, err := docker.NetworkCreate(ctx, objs.network, network.CreateOptions{Driver: "bridge"}); err != nil {
		return 0, objs, err
	}
	cfg, host := handContainer(image, password, objs.network)
	c, err := docker.ContainerCreate(ctx, cfg, host, &network.NetworkingConfig{}, nil, "")
	if err != nil {
		return 0, objs, err
	}
	objs.container = c.ID
	if err := docker.CopyToContainer(ctx, c.ID, "/workspace", tarOf(map[string][]byte{"opencode.json": config, "AGENTS.md": workspace.AgentsMD}), container.CopyToContainerOptions{}); err != nil {
		return 0, objs, err
	}
	if err := docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		return 0, objs, err
	}
	ci, err := docker.ContainerInspect(ctx, c.ID)
	if err != nil {
		return 0, objs, err
	}
	oc := opencode.New("http://127.0.0.1:"+ci.NetworkSettings.Ports["4096/tcp"][0].HostPort, password, nil)
	for {
		if h, err := oc.Health(ctx, 2*time.Second); err == nil && h.Healthy {
			break
		}
		if ctx.Err() != nil {
			return 0, objs, ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := oc.SetAuth(ctx, "custom", opencode.Auth{Type: "api", Key: "sk-bench"}); err != nil {
		return 0, objs, err
	}
	s, err := oc.CreateSession(ctx, "bench")
	if err != nil {
		return 0, objs, err
	}
	if err := oc.PromptAsync(ctx, s.ID, opencode.Model{ProviderID: "custom", ModelID: "mock-model"}, "hello"); err != nil {
		return 0, objs, err
	}
	return time.Since(start), objs, nil
}

// handObjects are the Docker objects one hand run made.
type handObjects struct{ network, container string }

func (o handObjects) remove(docker *dockerclient.Client) {
	ctx := context.Background()
	if o.container != "" {
		docker.ContainerRemove(ctx, o.container, container.RemoveOptions{Force: true, RemoveVolumes: true})
	}
	if o.network != "" {
		docker.NetworkRemove(ctx, o.network)
	}
}

// tarOf packs files for CopyToContainer, owned by the agent, as doce writes them.
func tarOf(files map[string][]byte) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Now(), Uid: workspace.AgentUID, Gid: workspace.AgentUID})
		tw.Write(content)
	}
	tw.Close()
	return &buf
}

// doceSetups creates projects through a running doce and waits on their setups.
type doceSetups struct {
	image string
	doce  *doceProcess
	hc    *recordingClient
	ws    workspace.Backend // where its workspaces are removed, untimed
	tc    client.Client
}

func newDoceSetups(b *testing.B, stack stackEnv, extraEnv ...string) *doceSetups {
	return newDoceSetupsOn(b, stack, benchBaseURL, extraEnv...)
}

// newDoceSetupsOn is newDoceSetups with the custom provider at baseURL.
func newDoceSetupsOn(b *testing.B, stack stackEnv, baseURL string, extraEnv ...string) *doceSetups {
	doce := startDoce(b, stack, fmt.Sprintf("bench-%d", time.Now().UnixNano()), append([]string{
		fmt.Sprintf("DOCE_WORKSPACE_MEMORY=%d", benchMemory), fmt.Sprintf("DOCE_WORKSPACE_PIDS=%d", benchPids)}, extraEnv...)...)
	hc := newClient(b)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v", err)
	}
	if status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-bench", "baseURL": baseURL, "models": "mock-model"}); status != http.StatusCreated {
		b.Fatalf("connect: %d %s", status, body)
	}
	ws, err := workspace.NewManager("127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	tc, err := client.Dial(temporalOptions(b, stack))
	if err != nil {
		b.Fatal(err)
	}
	return &doceSetups{image: stack.OpenCodeImage, doce: doce, hc: hc, ws: ws, tc: tc}
}

func (d *doceSetups) close() { d.tc.Close(); d.ws.Close() }

// BenchmarkSetupKubernetes runs the same setups through doce on the Kubernetes backend and on
// Docker, side by side: the two alternate within one run (the order flips every round), each
// round one setup on each. Run with `BENCH=SetupKubernetes make bench` as root (the test
// cluster).
func BenchmarkSetupKubernetes(b *testing.B) {
	stack := requireStack(b)
	kube := requireKubeBackend(b)
	docker := newDoceSetups(b, stack)
	defer docker.close()
	env, _ := kube.doceEnv(b, stack)
	k := newDoceSetups(b, stack, env...)
	k.ws.Close()
	k.ws = kube.backend(b)
	defer k.close()

	b.ResetTimer()
	kubeTotal, dockerTotal := alternate(b, "kubernetes", "docker", func() time.Duration { return k.round(b, 1) }, func() time.Duration { return docker.round(b, 1) })
	b.ReportMetric(float64(kubeTotal.Milliseconds())/float64(b.N), "kubernetes-ms/setup")
	b.ReportMetric(float64(dockerTotal.Milliseconds())/float64(b.N), "docker-ms/setup")
	if dockerTotal > 0 {
		b.ReportMetric(float64(kubeTotal)/float64(dockerTotal), "kubernetes/docker")
	}
}

// round creates n projects at once and returns the mean time from POST /api/v1/projects to
// ProjectSetup completing; the projects are removed untimed.
func (d *doceSetups) round(b *testing.B, n int) time.Duration {
	b.Helper()
	durations := make([]time.Duration, n)
	ids := d.create(b, n, durations)
	b.StopTimer()
	defer b.StartTimer()
	for _, id := range ids {
		if id != "" {
			d.ws.Down(context.Background(), id)
		}
	}
	return mean(durations)
}

func (d *doceSetups) create(b *testing.B, n int, durations []time.Duration) []string {
	ids := make([]string, n)
	var wg sync.WaitGroup
	for j := 0; j < n; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			status, body := apiCall(b, d.hc, d.doce.URL, "POST", "/api/v1/projects",
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
			if err := d.tc.GetWorkflow(ctx, created.Project.WorkflowID, "").Get(ctx, nil); err != nil {
				b.Errorf("setup %s: %v", created.Project.ID, err)
				return
			}
			durations[j] = time.Since(start)
		}()
	}
	wg.Wait()
	return ids
}

// assertSameSettings makes one project through doce and one container by hand and compares
// the settings that shape a workspace's start.
func (d *doceSetups) assertSameSettings(b *testing.B, docker *dockerclient.Client) {
	ctx := context.Background()
	ids := d.create(b, 1, make([]time.Duration, 1))
	defer d.ws.Down(ctx, ids[0])
	ci, err := docker.ContainerInspect(ctx, "doce-"+ids[0]+"-opencode")
	if err != nil {
		b.Fatal(err)
	}
	cfg, host := handContainer(d.image, "", "")
	type settings struct {
		Image, User, WorkingDir   string
		CapDrop, SecurityOpt, DNS []string
		ExtraHosts                []string
		ReadonlyRootfs            bool
		Tmpfs                     map[string]string
		Memory, Pids              int64
		Targets                   []string
		Env                       []string // names only
		Ports                     []string
	}
	of := func(c *container.Config, h *container.HostConfig) settings {
		s := settings{Image: c.Image, User: c.User, WorkingDir: c.WorkingDir, CapDrop: h.CapDrop, SecurityOpt: h.SecurityOpt,
			DNS: h.DNS, ExtraHosts: h.ExtraHosts, ReadonlyRootfs: h.ReadonlyRootfs, Tmpfs: h.Tmpfs, Memory: h.Memory, Pids: *h.PidsLimit}
		for _, m := range h.Mounts {
			s.Targets = append(s.Targets, m.Target)
		}
		for p := range c.ExposedPorts {
			s.Ports = append(s.Ports, string(p)+" on "+h.PortBindings[p][0].HostIP)
		}
		slices.Sort(s.Ports)
		for _, kv := range c.Env {
			if name, _, _ := strings.Cut(kv, "="); name == "OPENCODE_SERVER_PASSWORD" || name == "PORT" || name == "OPENCODE_DISABLE_MODELS_FETCH" {
				s.Env = append(s.Env, kv[:len(name)])
			}
		}
		return s
	}
	if got, want := of(cfg, host), of(ci.Config, ci.HostConfig); !reflect.DeepEqual(got, want) {
		b.Fatalf("the hand run's settings differ from doce's:\nhand %+v\ndoce %+v", got, want)
	}
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// quietLogger keeps the Temporal client's own logging out of benchmark output.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// BenchmarkPages200 loads every page a signed-in administrator has, the page of a ready
// project included, at 200 requests/s: 2,000 loads in 10 s per iteration and page, reporting
// the latency's p50 and p99 (target: p99 under 50 ms). Each request is sent on schedule whether
// or not the earlier ones answered, as users would. It runs on each database engine: one doce
// per engine, both up throughout, and each page loaded on one engine right after the other
// (BenchmarkPages200/<page>/sqlite, .../postgres), so drift of the machine hits both alike.
func BenchmarkPages200(b *testing.B) {
	stack := requireStack(b)
	type target struct {
		url  string
		id   string
		page *http.Client
	}
	targets := map[string]target{}
	for _, d := range storetest.Dialects() {
		doce := startDoce(b, stack, fmt.Sprintf("bench-page-%s-%d", d, time.Now().UnixNano()), databaseEnv(b, d)...)
		hc := benchAdmin(b, doce)
		id := benchReadyProjects(b, hc, doce, 1)[0]
		// A plain client sharing the session cookie: the recording one keeps every body.
		tg := target{url: doce.URL, id: id, page: &http.Client{Jar: hc.Jar, Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
		// Warm up: ten loads at a time fill the database pool and the HTTP connections, so the
		// first page measured does not pay for opening them.
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					if resp, err := tg.page.Get(tg.url + "/projects/" + id); err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}
			}()
		}
		wg.Wait()
		targets[d] = tg
	}
	for _, path := range []string{"/projects/{id}", "/projects", "/settings/providers", "/account", "/ops", "/admin/users"} {
		b.Run(strings.ReplaceAll(strings.TrimPrefix(strings.ReplaceAll(path, "{id}", "ready"), "/"), "/", "-"), func(b *testing.B) {
			for _, d := range storetest.Dialects() {
				tg := targets[d]
				b.Run(d, func(b *testing.B) { loadAt200(b, tg.page, tg.url+strings.ReplaceAll(path, "{id}", tg.id)) })
			}
		})
	}
}

// loadAt200 GETs url at 200 requests/s, 2,000 per iteration, and reports p50 and p99.
func loadAt200(b *testing.B, page *http.Client, url string) {
	const rate, count = 200, 2000
	var p50, p99 time.Duration
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
				resp, err := page.Get(url)
				if err != nil {
					b.Errorf("GET %s: %v", url, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("GET %s: %d", url, resp.StatusCode)
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

// BenchmarkStreams50 holds 50 conversation streams open for 10 s, first all on one project,
// then five on each of ten, and reports what doce's process spent meanwhile: CPU (percent of
// one core) and its resident memory at the end.
func BenchmarkStreams50(b *testing.B) {
	stack := requireStack(b)
	doce := startDoce(b, stack, fmt.Sprintf("bench-streams-%d", time.Now().UnixNano()))
	hc := benchAdmin(b, doce)
	ids := benchReadyProjects(b, hc, doce, 10)
	pid := doce.procs["dev"].cmd.Process.Pid
	for _, tc := range []struct {
		name     string
		projects []string
	}{{"one-project", ids[:1]}, {"ten-projects", ids}} {
		b.Run(tc.name, func(b *testing.B) {
			var cpu float64
			var rss int64
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				opened := make(chan error, 50)
				for i := range 50 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequestWithContext(ctx, http.MethodGet, doce.URL+"/api/v1/projects/"+tc.projects[i%len(tc.projects)]+"/stream", nil)
						resp, err := (&http.Client{Jar: hc.Jar}).Do(req)
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("stream: %d", resp.StatusCode)
						}
						opened <- err
						if err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}()
				}
				for range 50 {
					if err := <-opened; err != nil {
						b.Fatal(err)
					}
				}
				before, at := procCPU(b, pid), time.Now()
				time.Sleep(10 * time.Second)
				cpu = (procCPU(b, pid) - before).Seconds() / time.Since(at).Seconds() * 100
				rss = procRSS(b, pid)
				cancel()
				wg.Wait()
			}
			b.ReportMetric(cpu, "cpu-%")
			b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
		})
	}
}

// procCPU is the CPU time process pid has used (user and system), from /proc.
func procCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command name (which may hold spaces) start after its ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// procRSS is process pid's resident memory in bytes, from /proc.
func procRSS(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		b.Fatal(err)
	}
	pages, _ := strconv.ParseInt(strings.Fields(string(raw))[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// benchAdmin signs the first administrator in and connects a custom provider that answers
// nothing (the benchmarks look at doce, not at the agent).
func benchAdmin(b *testing.B, doce *doceProcess) *recordingClient {
	hc := newClient(b)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v", err)
	}
	if status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": "sk-bench", "baseURL": benchBaseURL, "models": "mock-model"}); status != http.StatusCreated {
		b.Fatalf("connect: %d %s", status, body)
	}
	return hc
}

// benchReadyProjects creates n projects at once and waits until all are ready.
func benchReadyProjects(b *testing.B, hc *recordingClient, doce *doceProcess, n int) []string {
	var ids []string
	for i := range n {
		status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": fmt.Sprintf("hello %d", i), "providerId": "custom", "modelId": "mock-model"})
		if status != http.StatusCreated {
			b.Fatalf("create: %d %s", status, body)
		}
		var created struct{ Project struct{ ID string } }
		json.Unmarshal(body, &created)
		ids = append(ids, created.Project.ID)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, id := range ids {
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
	}
	return ids
}

// BenchmarkPool1 sets up projects one at a time through a doce with a pool of one prebuilt
// workspace and through one without, alternating, and reports the pooled setups' p50 and its
// share of the cold mean (targets: 400 ms and 10 %). Before timing, one project teaches the pool
// the configuration (provider, model) the rest use; each pooled setup waits, untimed, for the
// pool to hold a free workspace again. At the end it reports what the one free pooled workspace
// costs at rest: its memory and its CPU over 10 s.
func BenchmarkPool1(b *testing.B) {
	warm, cold := poolBench(b, 1)
	var pooled, unpooled []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitPoolFree(b, warm.doce, 1, 3*time.Minute)
		b.StartTimer()
		if i%2 == 0 {
			pooled = append(pooled, warm.round(b, 1))
			unpooled = append(unpooled, cold.round(b, 1))
		} else {
			unpooled = append(unpooled, cold.round(b, 1))
			pooled = append(pooled, warm.round(b, 1))
		}
		b.Logf("round %d: pooled %s, cold %s", i+1, pooled[i].Round(time.Millisecond), unpooled[i].Round(time.Millisecond))
	}
	b.StopTimer()
	p50 := slices.Sorted(slices.Values(pooled))[len(pooled)/2]
	b.ReportMetric(float64(p50.Microseconds())/1000, "pooled-p50-ms")
	b.ReportMetric(float64(mean(unpooled).Microseconds())/1000, "cold-ms")
	b.ReportMetric(float64(p50)/float64(mean(unpooled)), "pooled/cold")

	waitPoolFree(b, warm.doce, 1, 3*time.Minute)
	mem, cpu := poolAtRest(b, warm)
	b.ReportMetric(float64(mem)/(1<<20), "pool-rest-MiB")
	b.ReportMetric(cpu, "pool-rest-cpu-%")
}

// alternate runs a round of each of two series b.N times, the order flipping every round so
// the machine's drift over minutes hits both alike, logs each round's figures and returns the
// totals.
func alternate(b *testing.B, aName, cName string, a, c func() time.Duration) (aTotal, cTotal time.Duration) {
	b.Helper()
	for i := 0; i < b.N; i++ {
		var x, y time.Duration
		if i%2 == 0 {
			x, y = a(), c()
		} else {
			y, x = c(), a()
		}
		b.Logf("round %d: %s %s, %s %s per setup", i+1, aName, x.Round(time.Millisecond), cName, y.Round(time.Millisecond))
		aTotal += x
		cTotal += y
	}
	return aTotal, cTotal
}

// BenchmarkPool20 starts twenty setups at once through a doce with a pool of three and through
// one without, alternating, and reports both means (target: pooled no worse than cold).
func BenchmarkPool20(b *testing.B) {
	warm, cold := poolBench(b, 3)
	b.ResetTimer()
	pooled, unpooled := alternate(b, "pooled", "cold", func() time.Duration {
		b.StopTimer()
		waitPoolFree(b, warm.doce, 3, 5*time.Minute)
		b.StartTimer()
		return warm.round(b, 20)
	}, func() time.Duration { return cold.round(b, 20) })
	b.ReportMetric(float64(pooled.Milliseconds())/float64(b.N), "pooled-ms/setup")
	b.ReportMetric(float64(unpooled.Milliseconds())/float64(b.N), "cold-ms/setup")
	b.ReportMetric(float64(pooled)/float64(unpooled), "pooled/cold")
}

// poolBench starts a doce with a pool of size and one without, until the benchmark ends, and
// sets up one project on the pooled one untimed, so its pool learns the configuration the
// benchmark's projects use.
func poolBench(b *testing.B, size int) (warm, cold *doceSetups) {
	stack := requireStack(b)
	warm = newDoceSetups(b, stack, fmt.Sprintf("DOCE_WORKSPACE_POOL=%d", size))
	b.Cleanup(warm.close)
	cold = newDoceSetups(b, stack)
	b.Cleanup(cold.close)
	waitPoolFree(b, warm.doce, size, 3*time.Minute)
	warm.round(b, 1)
	return warm, cold
}

// poolAtRest measures the free pooled workspaces of d: their memory now and their CPU (percent
// of one core) over 10 s, from Docker's container stats.
func poolAtRest(b *testing.B, d *doceSetups) (memBytes int64, cpuPercent float64) {
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	ctx := context.Background()
	stats := func(id string) container.StatsResponse {
		r, err := docker.ContainerStatsOneShot(ctx, "doce-"+id+"-opencode")
		if err != nil {
			b.Fatal(err)
		}
		defer r.Body.Close()
		var s container.StatsResponse
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			b.Fatal(err)
		}
		return s
	}
	ids := slices.Collect(maps.Keys(pooledIDs(b, d.doce)))
	before := map[string]uint64{}
	for _, id := range ids {
		before[id] = stats(id).CPUStats.CPUUsage.TotalUsage
	}
	const window = 10 * time.Second
	time.Sleep(window)
	var used uint64
	for _, id := range ids {
		s := stats(id)
		used += s.CPUStats.CPUUsage.TotalUsage - before[id]
		memBytes += int64(s.MemoryStats.Usage)
	}
	return memBytes, 100 * float64(used) / float64(window.Nanoseconds())
}

// BenchmarkSetup20Hosts sets up 20 projects at once over two Docker hosts (the main engine and
// a second dockerd, both on this machine, a worker each), and 20 at once on one of them (the
// other drained), alternating the order every round. Both hosts share the machine's two cores,
// so this measures what placement and per-host routing cost, not what more machines would give.
// It reports the mean create → setup-complete time per project of each, and their ratio.
func BenchmarkSetup20Hosts(b *testing.B) {
	const n = 20
	stack := requireStack(b)
	second := startDockerEngine(b, stack.OpenCodeImage)
	doce := newDoce(b, stack, fmt.Sprintf("bench-hosts-%d", time.Now().UnixNano()), []string{
		"DOCE_HOST_HEARTBEAT=1s", fmt.Sprintf("DOCE_WORKSPACE_MEMORY=%d", benchMemory), fmt.Sprintf("DOCE_WORKSPACE_PIDS=%d", benchPids)})
	doce.start(b, "serve")
	doce.startAs(b, "worker-a", "worker", "DOCE_HOST_NAME=a")
	doce.startAs(b, "worker-b", "worker", "DOCE_HOST_NAME=b", "DOCKER_HOST="+second.Host, "DOCE_WORKSPACE_HOST=127.0.0.2",
		"DOCE_HOST_GATEWAY="+hostGatewayIP(b), "DOCE_EGRESS_PROXY_PORT="+freePort(b))
	doce.waitHealthy(b)
	hc := benchAdmin(b, doce)
	tc, err := client.Dial(temporalOptions(b, stack))
	if err != nil {
		b.Fatal(err)
	}
	defer tc.Close()
	d := &doceSetups{image: stack.OpenCodeImage, doce: doce, hc: hc, tc: tc}
	drain := func(host string, on bool) {
		verb := "undrain"
		if on {
			verb = "drain"
		}
		if status, body := apiCall(b, hc, doce.URL, "POST", "/api/v1/ops/hosts/"+host+"/"+verb, nil); status != http.StatusOK {
			b.Fatalf("%s %s: %d %s", verb, host, status, body)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, body := apiCall(b, hc, doce.URL, "GET", "/api/v1/ops/hosts", nil)
		if strings.Count(string(body), `"state":"ready"`) == 2 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("two ready hosts not registered within a minute: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// round sets up n projects at once, on both hosts or on a alone, and returns the mean; the
	// projects are deleted untimed, so every round starts from empty hosts.
	round := func(both bool) time.Duration {
		if !both {
			drain("b", true)
		}
		durations := make([]time.Duration, n)
		ids := d.create(b, n, durations)
		b.StopTimer()
		defer b.StartTimer()
		if !both {
			drain("b", false)
		}
		placed := map[string]int{}
		for _, id := range ids {
			_, body := apiCall(b, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
			var v struct{ Project struct{ Host string } }
			json.Unmarshal(body, &v)
			placed[v.Project.Host]++
			apiCall(b, hc, doce.URL, "DELETE", "/api/v1/projects/"+id, nil)
		}
		b.Logf("placed %v", placed)
		if both && (placed["a"] != n/2 || placed["b"] != n/2) || !both && placed["a"] != n {
			b.Errorf("placed %v", placed)
		}
		gone := time.Now().Add(5 * time.Minute)
		for _, id := range ids {
			for {
				if status, _ := apiCall(b, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil); status == http.StatusNotFound {
					break
				}
				if time.Now().After(gone) {
					b.Fatalf("project %s not torn down within 5 minutes", id)
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		return mean(durations)
	}

	var twoTotal, oneTotal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var two, one time.Duration
		if i%2 == 0 {
			two, one = round(true), round(false)
		} else {
			one, two = round(false), round(true)
		}
		b.Logf("round %d, %d at once: two hosts %s, one host %s per setup", i+1, n, two.Round(time.Millisecond), one.Round(time.Millisecond))
		twoTotal += two
		oneTotal += one
	}
	b.ReportMetric(float64(twoTotal.Milliseconds())/float64(b.N), "two-hosts-ms/setup")
	b.ReportMetric(float64(oneTotal.Milliseconds())/float64(b.N), "one-host-ms/setup")
	if oneTotal > 0 {
		b.ReportMetric(float64(twoTotal)/float64(oneTotal), "two/one")
	}
}

// BenchmarkGateway compares streams through doce's LLM gateway with the same streams straight
// from the mock LLM, interleaved in one run (the order flips every round), so drift hits both
// alike: time to the first token, time to the last, and the gateway's overhead on each
// (p50, p99). The mock writes 20 chunks 10 ms apart; a gateway that buffered would deliver the
// first with the last, which fails the run if it happens in more than a tenth of the streams
// (on a busy machine a stream may be held up that long once in a while). Run with `BENCH=Gateway make bench`.
func BenchmarkGateway(b *testing.B) {
	stack := requireStack(b)
	llm := startMockLLM(b, hostGatewayIP(b))
	d := startDoce(b, stack, fmt.Sprintf("bench-gw-%d", time.Now().UnixNano()))
	hc := newClient(b)
	if resp, err := hc.PostForm(d.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("setup: %v", err)
	}
	key := "sk-bench-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	if status, body := apiCall(b, hc, d.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		b.Fatalf("connect: %d %s", status, body)
	}
	// A project row with a gateway token, as a setup's hand-over makes one; no workspace is
	// needed to call the gateway.
	st, err := store.Open(d.Database)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	u, err := st.UserByUsername(ctx, "admin")
	if err != nil {
		b.Fatal(err)
	}
	conn, err := st.Connection(ctx, u.ID, "custom")
	if err != nil {
		b.Fatal(err)
	}
	p := &store.Project{OwnerUserID: u.ID, Name: "Bench", Slug: "bench", Prompt: "x", ProviderID: "custom", ModelID: "mock-model"}
	if _, _, err := st.CreateProject(ctx, p, nil); err != nil {
		b.Fatal(err)
	}
	token, err := st.IssueGatewayToken(ctx, p.ID, conn.ID)
	if err != nil {
		b.Fatal(err)
	}

	const chunks, gap = 20, 10 * time.Millisecond
	words := make([]string, chunks)
	for i := range words {
		words[i] = fmt.Sprintf("w%02d ", i)
	}
	// lastSent is when the mock flushed the last chunk of the latest stream.
	var (
		sentMu   sync.Mutex
		lastSent time.Time
	)
	llm.script("bench-stream", mockReply{Chunks: words, Delay: gap, Sent: func(i int, at time.Time) {
		if i == chunks-1 {
			sentMu.Lock()
			lastSent = at
			sentMu.Unlock()
		}
	}})
	body := `{"model":"mock-model","stream":true,"tools":[{"type":"function","function":{"name":"noop"}}],"messages":[{"role":"user","content":"bench-stream"}]}`
	direct := llm.URL + "/v1/chat/completions"
	through := "http://" + envOf(d.Env, "DOCE_GATEWAY_ADDR") + "/p/custom/chat/completions"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}

	// stream returns the time to the first content chunk and to the end of the answer, and
	// whether the first chunk arrived before the mock had written the last.
	stream := func(u, auth string) (first, last time.Duration, streamed bool) {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+auth)
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(resp.Body)
			b.Fatalf("POST %s: %d %s", u, resp.StatusCode, msg)
		}
		sc := bufio.NewScanner(resp.Body)
		got := 0
		var firstAt time.Time
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"content":"w`) {
				if got == 0 {
					firstAt = time.Now()
					first = firstAt.Sub(start)
				}
				got++
			}
		}
		last = time.Since(start)
		if got != chunks {
			b.Fatalf("POST %s: %d chunks, want %d", u, got, chunks)
		}
		sentMu.Lock()
		defer sentMu.Unlock()
		return first, last, firstAt.Before(lastSent)
	}
	for range 3 { // warm both paths: connections, the gateway's first Vault call
		stream(direct, key)
		stream(through, token)
	}
	buffered := 0
	var dFirst, gFirst, dLast, gLast, overFirst, overLast []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var df, dl, gf, gl time.Duration
		var streamed bool
		if i%2 == 0 {
			df, dl, _ = stream(direct, key)
			gf, gl, streamed = stream(through, token)
		} else {
			gf, gl, streamed = stream(through, token)
			df, dl, _ = stream(direct, key)
		}
		if !streamed {
			buffered++
		}
		dFirst, gFirst, dLast, gLast = append(dFirst, df), append(gFirst, gf), append(dLast, dl), append(gLast, gl)
		overFirst, overLast = append(overFirst, gf-df), append(overLast, gl-dl)
	}
	b.StopTimer()
	// A gateway that buffered would deliver no first chunk before the mock wrote its last.
	if buffered > b.N/10 {
		b.Fatalf("in %d of %d streams the first chunk came through the gateway only after the mock had written the last: the gateway buffers", buffered, b.N)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(percentile(overFirst, 0.5)), "ttft-overhead-p50-ms")
	b.ReportMetric(ms(percentile(overFirst, 0.99)), "ttft-overhead-p99-ms")
	b.ReportMetric(ms(percentile(overLast, 0.5)), "stream-overhead-p50-ms")
	b.ReportMetric(ms(percentile(overLast, 0.99)), "stream-overhead-p99-ms")
	b.ReportMetric(float64(chunks)/percentile(gLast, 0.5).Seconds(), "gateway-chunks/s")
	b.ReportMetric(float64(chunks)/percentile(dLast, 0.5).Seconds(), "direct-chunks/s")
	b.Logf("n=%d: first token p50 direct %s, gateway %s; whole stream p50 direct %s, gateway %s",
		len(dFirst), percentile(dFirst, 0.5), percentile(gFirst, 0.5), percentile(dLast, 0.5), percentile(gLast, 0.5))
	// Where the gateway's time goes: its own work before forwarding, and Vault's share of it.
	if resp, err := http.Get(d.MetricsURL + "/metrics"); err == nil {
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, l := range strings.Split(string(m), "\n") {
			if strings.HasPrefix(l, "doce_gateway_overhead_seconds_sum") || strings.HasPrefix(l, "doce_gateway_overhead_seconds_count") ||
				strings.HasPrefix(l, `doce_vault_request_duration_seconds_sum{operation="decrypt"`) || strings.HasPrefix(l, `doce_vault_request_duration_seconds_count{operation="decrypt"`) {
				b.Log(l)
			}
		}
	}
	// The mock saw the real key on the gateway's requests too.
	for _, r := range llm.requests() {
		if r.Path == "/v1/chat/completions" && r.Authorization != "Bearer "+key {
			b.Fatalf("a request reached the mock with %q", r.Authorization)
		}
	}
}

// BenchmarkFirstToken measures how long a user waits for the agent to start working, at the
// mock LLM (through the LLM gateway, as in production), with a doce keeping one prebuilt
// workspace:
//   - create → first LLM request: from POST /api/v1/projects to the first chat completion the
//     project's first prompt causes (OpenCode asks for the session's title alongside the
//     agent's turn), and to the agent's own turn (the request that offers tools);
//   - a follow-up message → its LLM request, through doce (POST .../messages) against the same
//     prompt sent straight to the workspace's OpenCode (prompt_async), alternating which goes
//     first each round.
//
// Before timing, one project teaches the pool the configuration the rest use; each round waits,
// untimed, for the pool to hold a free workspace again. Reports p50s (target: ≤ 1 s create →
// first LLM request; follow-up ≤ straight + 20 ms).
func BenchmarkFirstToken(b *testing.B) {
	stack := requireStack(b)
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer docker.Close()
	llm := startMockLLM(b, hostGatewayIP(b))
	d := newDoceSetupsOn(b, stack, "http://host.docker.internal:"+llm.port()+"/v1", "DOCE_WORKSPACE_POOL=1")
	defer d.close()
	waitPoolFree(b, d.doce, 1, 5*time.Minute)
	d.round(b, 1) // the pool learns the benchmark's configuration

	var first, agentTurn, viaDoce, straight []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		waitPoolFree(b, d.doce, 1, 5*time.Minute)
		b.StartTimer()
		marker := fmt.Sprintf("first-token round %d at %d", i, time.Now().UnixNano())
		start := time.Now()
		status, body := apiCall(b, d.hc, d.doce.URL, "POST", "/api/v1/projects",
			map[string]any{"prompt": marker, "providerId": "custom", "modelId": "mock-model"})
		if status != http.StatusCreated {
			b.Fatalf("create: %d %s", status, body)
		}
		var created struct{ Project struct{ ID string } }
		json.Unmarshal(body, &created)
		id := created.Project.ID
		rq := waitCompletion(b, llm, marker, false)
		first = append(first, rq.At.Sub(start))
		rq = waitCompletion(b, llm, marker, true)
		agentTurn = append(agentTurn, rq.At.Sub(start))

		b.StopTimer()
		oc, sessionID := benchOpenCode(b, docker, id)
		b.StartTimer()
		viaDoceOnce := func() time.Duration {
			waitIdle(b, oc)
			m := fmt.Sprintf("follow-up through doce %d at %d", i, time.Now().UnixNano())
			start := time.Now()
			if status, body := apiCall(b, d.hc, d.doce.URL, "POST", "/api/v1/projects/"+id+"/messages", map[string]any{"text": m}); status != http.StatusAccepted {
				b.Fatalf("POST messages: %d %s", status, body)
			}
			return waitCompletion(b, llm, m, true).At.Sub(start)
		}
		straightOnce := func() time.Duration {
			waitIdle(b, oc)
			m := fmt.Sprintf("follow-up straight %d at %d", i, time.Now().UnixNano())
			start := time.Now()
			if err := oc.PromptAsync(context.Background(), sessionID, opencode.Model{ProviderID: "custom", ModelID: "mock-model"}, m); err != nil {
				b.Fatal(err)
			}
			return waitCompletion(b, llm, m, true).At.Sub(start)
		}
		if i%2 == 0 {
			viaDoce = append(viaDoce, viaDoceOnce())
			straight = append(straight, straightOnce())
		} else {
			straight = append(straight, straightOnce())
			viaDoce = append(viaDoce, viaDoceOnce())
		}
		b.Logf("round %d: create → first LLM request %s, → agent's turn %s; follow-up through doce %s, straight %s", i+1,
			first[i].Round(time.Millisecond), agentTurn[i].Round(time.Millisecond), viaDoce[i].Round(time.Millisecond), straight[i].Round(time.Millisecond))
		b.StopTimer()
		d.ws.Down(context.Background(), id)
		b.StartTimer()
	}
	b.StopTimer()
	p50 := func(ds []time.Duration) time.Duration { return slices.Sorted(slices.Values(ds))[len(ds)/2] }
	b.Logf("\n| path (p50 of %d) | ms |\n|---|---|\n| create → first LLM request, prebuilt workspace | %d |\n| create → the agent's turn, prebuilt workspace | %d |\n| follow-up through doce → LLM request | %d |\n| same prompt straight to OpenCode → LLM request | %d |",
		b.N, p50(first).Milliseconds(), p50(agentTurn).Milliseconds(), p50(viaDoce).Milliseconds(), p50(straight).Milliseconds())
	b.ReportMetric(float64(p50(first).Microseconds())/1000, "create-first-llm-p50-ms")
	b.ReportMetric(float64(p50(agentTurn).Microseconds())/1000, "create-agent-turn-p50-ms")
	b.ReportMetric(float64(p50(viaDoce).Microseconds())/1000, "followup-doce-p50-ms")
	b.ReportMetric(float64(p50(straight).Microseconds())/1000, "followup-straight-p50-ms")
}

// waitCompletion waits, up to two minutes, for the mock's first chat completion request that
// holds marker (the agent's turn only, with agentTurn).
func waitCompletion(b *testing.B, llm *mockLLM, marker string, agentTurn bool) llmRequest {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if rq, ok := llm.completionWith(marker, agentTurn); ok {
			return rq
		}
		if time.Now().After(deadline) {
			b.Fatalf("no LLM request with %q after 2m", marker)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// benchOpenCode reaches a project's OpenCode as doce does (its published port, its password)
// and names the session its setup opened.
func benchOpenCode(b *testing.B, docker *dockerclient.Client, projectID string) (*opencode.Client, string) {
	b.Helper()
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		b.Fatal(err)
	}
	oc := opencode.New("http://127.0.0.1:"+ci.NetworkSettings.Ports["4096/tcp"][0].HostPort, envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD"), nil)
	sessions, err := oc.Sessions(context.Background())
	if err != nil || len(sessions) == 0 {
		b.Fatalf("the project's sessions: %v (%d)", err, len(sessions))
	}
	return oc, sessions[len(sessions)-1].ID
}

// waitIdle waits, up to two minutes, until no session of oc is busy.
func waitIdle(b *testing.B, oc *opencode.Client) {
	b.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		busy, err := oc.Busy(context.Background())
		if err == nil && !busy {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("OpenCode still busy after 2m (%v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
