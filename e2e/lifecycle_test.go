package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	dockerclient "github.com/docker/docker/client"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// containerRunning reports whether the project's OpenCode container exists and runs.
func containerRunning(t *testing.T, docker *dockerclient.Client, projectID string) (exists, running bool) {
	t.Helper()
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if cerrdefs.IsNotFound(err) {
		return false, false
	} else if err != nil {
		t.Fatal(err)
	}
	return true, ci.State.Running
}

// leftovers counts the project's containers, volumes and networks on the Docker host.
func leftovers(t *testing.T, docker *dockerclient.Client, projectID string) (containers, volumes, networks int) {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	return len(cs), len(vs.Volumes), len(ns)
}

func storedKey(t *testing.T, docker *dockerclient.Client, projectID string) string {
	t.Helper()
	var auth map[string]struct{ Key string }
	json.Unmarshal(readContainerFile(t, docker, "doce-"+projectID+"-opencode", workspace.AuthFile), &auth)
	return auth["custom"].Key
}

// publishedPort is where the project's OpenCode container is published now; 0 while it does
// not run.
func publishedPort(t *testing.T, docker *dockerclient.Client, projectID string) (port, restarts int) {
	t.Helper()
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		t.Fatal(err)
	}
	if b := ci.NetworkSettings.Ports["4096/tcp"]; ci.State.Running && len(b) > 0 {
		port, _ = strconv.Atoi(b[0].HostPort)
	}
	return port, ci.RestartCount
}

// crashAndFollow kills the project's OpenCode as a crash would: Docker restarts the container
// and publishes it on new host ports. The owner's next requests find the workspace there.
func crashAndFollow(t *testing.T, hc *recordingClient, doce *doceProcess, docker *dockerclient.Client, projectID string) {
	t.Helper()
	before, restarts := publishedPort(t, docker, projectID)
	if out, err := exec.Command("docker", "exec", "doce-"+projectID+"-opencode", "pkill", "-KILL", "-f", "opencode serve").CombinedOutput(); err != nil {
		t.Fatalf("kill OpenCode in the workspace: %v %s", err, out)
	}
	waitFor(t, "Docker restarts the workspace on a new port", time.Minute, func() (bool, error) {
		now, n := publishedPort(t, docker, projectID)
		return n > restarts && now != 0 && now != before, fmt.Errorf("port %d (was %d), %d restarts", now, before, n)
	})
	crashed := time.Now()
	waitFor(t, "the conversation answers again", 2*time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+projectID+"/messages", nil)
		return status == http.StatusOK, fmt.Errorf("%d %.300s", status, body)
	})
	t.Logf("the conversation answered %s after Docker restarted the workspace", time.Since(crashed).Round(10*time.Millisecond))
	now, _ := publishedPort(t, docker, projectID)
	st := openStoreAt(t, doce)
	defer st.Close()
	p, err := st.Project(context.Background(), projectID)
	if err != nil {
		t.Fatal(err)
	}
	if p.HostPort != now {
		t.Errorf("recorded port %d, want %d where the container is published", p.HostPort, now)
	}
}

// TestStopStartAndDeleteAfterStop stops a ready project through the API, replaces its
// provider key while it is stopped, starts it again (twice at once: one start) and finds the
// new key handed to OpenCode; then deletes the stopped project and finds nothing left.
func TestStopStartAndDeleteAfterStop(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-lifecycle-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-before-stop")
	proxy.watch("PUT", "/auth/")
	p := createProject(t, hc, doce, "stop and start me")
	waitStatus(t, hc, doce, p.ID, "ready", 5*time.Minute)
	tc := temporalClient(t, stack)
	recordCompleted(t, stack, tc, "project-setup:"+p.ID, "project_setup_watch_idle.json") // starts the idle watch

	// Ready means OpenCode accepted the prompt; it stores it a moment later. Once it has, the
	// stop and start below must keep it.
	assertOneOfEach(t, docker, p.ID, "stop and start me")
	tokenBefore := storedKey(t, docker, p.ID)
	if !strings.HasPrefix(tokenBefore, store.GatewayTokenPrefix) {
		t.Fatalf("auth.json holds %q, want a gateway token", tokenBefore)
	}
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/start", nil)
	expectError(t, status, body, http.StatusConflict, "already running")

	stopAsked := time.Now()
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/stop", nil)
	if status != http.StatusAccepted || !strings.Contains(string(body), `"status":"stopping"`) {
		t.Fatalf("stop: %d %s", status, body)
	}
	waitStatus(t, hc, doce, p.ID, "stopped", 2*time.Minute)
	t.Logf("stopped %s after the request", time.Since(stopAsked).Round(10*time.Millisecond))
	if exists, running := containerRunning(t, docker, p.ID); !exists || running {
		t.Fatalf("after stop: container exists %v, running %v; want kept, not running", exists, running)
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/stop", nil)
	expectError(t, status, body, http.StatusConflict, "already stopped")
	recordCompleted(t, stack, tc, "project-stop:"+p.ID, "project_stop.json")

	// Replaced while stopped: the push skips a stopped workspace, so only the start can hand it over.
	in := map[string]any{"providerId": "custom", "apiKey": "sk-e2e-while-stopped", "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model", "replace": true}
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", in); status != http.StatusOK {
		t.Fatalf("replace key: %d %s", status, body)
	}
	// The push to running projects has run (and left the stopped one alone) before the start.
	waitWorkflowStatus(t, tc, "credential-push:"+mustUserID(t, doce, "admin")+":custom",
		enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, time.Minute)
	// The stopped workspace keeps its token, which the replacement revoked.
	if key := storedKey(t, docker, p.ID); key != tokenBefore {
		t.Fatalf("auth.json of the stopped workspace holds %q, want the old token", key)
	}
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GatewayGrant(context.Background(), tokenBefore); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the token of the replaced key still allows use: %v", err)
	}
	authBefore := len(proxy.hitTimes("PUT", "/auth/"))

	startAsked := time.Now()
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+p.ID+"/start", nil)
		}()
	}
	wg.Wait()
	if codes[0] != http.StatusAccepted && codes[1] != http.StatusAccepted {
		t.Fatalf("two starts at once: %v, want at least one 202", codes)
	}
	waitStatus(t, hc, doce, p.ID, "ready", 5*time.Minute)
	t.Logf("ready again %s after the start (answers %v)", time.Since(startAsked).Round(10*time.Millisecond), codes)
	if _, running := containerRunning(t, docker, p.ID); !running {
		t.Fatal("ready but the container does not run")
	}
	if key := storedKey(t, docker, p.ID); key == tokenBefore || !strings.HasPrefix(key, store.GatewayTokenPrefix) {
		t.Fatalf("auth.json after start holds %q, want a new gateway token", key)
	}
	if _, err := st.GatewayGrant(context.Background(), storedKey(t, docker, p.ID)); err != nil {
		t.Fatalf("the token handed over at the start allows nothing: %v", err)
	}
	if n := len(proxy.hitTimes("PUT", "/auth/")) - authBefore; n != 1 {
		t.Errorf("%d PUT /auth during the start, want 1 (one start for two requests)", n)
	}
	recordCompleted(t, stack, tc, "project-start:"+p.ID, "project_start.json")
	assertOneOfEach(t, docker, p.ID, "stop and start me")
	crashAndFollow(t, hc, doce, docker, p.ID)

	// The page shows the state and the button for it.
	resp, err := hc.Get(doce.URL + "/projects/" + p.ID)
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	if !strings.Contains(page, `action="/projects/`+p.ID+`/stop"`) || !strings.Contains(page, `data-status="ready"`) {
		t.Errorf("the ready project's page has no Stop button:\n%s", page)
	}

	// Stopped through the page's form, then deleted: nothing is left.
	resp, err = hc.PostForm(doce.URL+"/projects/"+p.ID+"/stop", nil)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop form: %v %v", resp, err)
	}
	waitStatus(t, hc, doce, p.ID, "stopped", 2*time.Minute)
	resp, _ = hc.Get(doce.URL + "/projects/" + p.ID)
	if page := readBody(t, resp); !strings.Contains(page, `action="/projects/`+p.ID+`/start"`) || !strings.Contains(page, `data-status="stopped"`) {
		t.Errorf("the stopped project's page has no Start button:\n%s", page)
	}
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+p.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitFor(t, "nothing left of the deleted project", time.Minute, func() (bool, error) {
		c, v, n := leftovers(t, docker, p.ID)
		return c+v+n == 0, fmt.Errorf("%d containers, %d volumes, %d networks", c, v, n)
	})
	// The teardown marks the project deleted once its Docker objects are gone.
	waitFor(t, "the deleted project answers 404", time.Minute, func() (bool, error) {
		status, _ := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID, nil)
		return status == http.StatusNotFound, fmt.Errorf("%d", status)
	})
	recordCompleted(t, stack, tc, "project-teardown:"+p.ID, "project_teardown_stopped.json")
}

// recordCompleted waits for the run to complete, then records its history (recordHistory).
func recordCompleted(t *testing.T, stack stackEnv, tc client.Client, workflowID, name string) {
	t.Helper()
	waitWorkflowStatus(t, tc, workflowID, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, 30*time.Second)
	recordHistory(t, stack, workflowID, name)
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

// watchPage holds the project page's event stream open, as a browser tab does, until the test
// ends; it reconnects when the server ends a stream.
func watchPage(t *testing.T, hc *recordingClient, doce *doceProcess, projectID string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	// Its own client: the recording one would read the endless body to the end.
	stream := &http.Client{Jar: hc.Jar}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, doce.URL+"/projects/"+projectID+"/events", nil)
			resp, err := stream.Do(req)
			if err == nil {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
				}
				resp.Body.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

// TestIdleWorkspaceIsStoppedAndAViewedOneStays runs two projects with a short idle time: the
// one nobody looks at is stopped by its WorkspaceIdle timer even though the worker is killed
// and replaced mid-wait; the one whose page stays open keeps running.
func TestIdleWorkspaceIsStoppedAndAViewedOneStays(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	const idle = 10 * time.Second
	doce := startDoceSplit(t, stack, fmt.Sprintf("e2e-idle-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_IDLE="+idle.String())
	hc := admin(t, doce, "sk-e2e-idle")
	viewed := createProject(t, hc, doce, "keep me open")
	waitStatus(t, hc, doce, viewed.ID, "ready", 5*time.Minute)
	watchPage(t, hc, doce, viewed.ID)
	// The unviewed one only now, so that the test sees it ready well inside its idle time.
	unviewed := createProject(t, hc, doce, "forget me")
	waitStatus(t, hc, doce, unviewed.ID, "ready", 5*time.Minute)
	readyAt := time.Now()

	// The worker dies while both timers run; Temporal keeps them. The replacement comes back
	// after the unviewed project's deadline has passed.
	doce.kill9(t, "worker")
	time.Sleep(idle)
	if _, running := containerRunning(t, docker, unviewed.ID); !running {
		t.Fatal("stopped without a worker: something other than the idle watch stopped it")
	}
	doce.start(t, "worker")
	waitStatus(t, hc, doce, unviewed.ID, "stopped", 3*time.Minute)
	t.Logf("the unviewed workspace stopped %s after it was ready (idle time %s, worker down for %s of it)",
		time.Since(readyAt).Round(100*time.Millisecond), idle, idle)
	if _, running := containerRunning(t, docker, unviewed.ID); running {
		t.Fatal("status stopped, container running")
	}
	recordCompleted(t, stack, temporalClient(t, stack), "workspace-idle:"+unviewed.ID, "workspace_idle.json")

	// Three more idle times with the page open: still up.
	time.Sleep(3 * idle)
	if p := getProject(t, hc, doce, viewed.ID); p.Status != "ready" {
		t.Fatalf("the viewed project is %s, want ready", p.Status)
	}
	if _, running := containerRunning(t, docker, viewed.ID); !running {
		t.Fatal("the viewed project's container stopped")
	}
	// A stopped project is not started by looking at it; its owner starts it.
	resp, err := hc.Get(doce.URL + "/projects/" + unviewed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if page := readBody(t, resp); !strings.Contains(page, "Start workspace") {
		t.Errorf("the idle-stopped project's page offers no start:\n%s", page)
	}
	if p := getProject(t, hc, doce, unviewed.ID); p.Status != "stopped" {
		t.Errorf("after a view the idle-stopped project is %s, want stopped", p.Status)
	}
}

// TestIdleStopMemory measures what idle stop saves: N workspaces set up and left alone, their
// memory (as docker stats counts it) while they idle and after their idle watches stopped them.
// A figure, not a check: it runs only with DOCE_MEASURE_IDLE_MEMORY=N.
func TestIdleStopMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("DOCE_MEASURE_IDLE_MEMORY"))
	if n <= 0 {
		t.Skip("a measurement: set DOCE_MEASURE_IDLE_MEMORY=N to run it")
	}
	n = min(n, 10) // bounded: 10 workspaces are ~3 GB
	stack := requireStack(t)
	docker := dockerClient(t)
	const idle = 90 * time.Second
	doce := startDoce(t, stack, fmt.Sprintf("e2e-idlemem-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_IDLE="+idle.String())
	hc := admin(t, doce, "sk-e2e-idle-memory")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = createProject(t, hc, doce, fmt.Sprintf("idle workspace %d", i)).ID
	}
	for _, id := range ids {
		waitStatus(t, hc, doce, id, "ready", 5*time.Minute)
	}
	time.Sleep(10 * time.Second) // past the first prompt's answer: idle, as they will stay
	before, running := workspaceMemory(t, docker, ids)
	hostBefore := memAvailable(t)
	if running != n {
		t.Fatalf("%d of %d workspaces run before the idle stop", running, n)
	}
	for _, id := range ids {
		waitStatus(t, hc, doce, id, "stopped", idle+2*time.Minute)
	}
	after, running := workspaceMemory(t, docker, ids)
	hostAfter := memAvailable(t)
	t.Logf("%d idle workspaces: %.0f MiB (%.0f MiB each) in %d running containers before the idle stop; %.0f MiB in %d after",
		n, mib(before), mib(before)/float64(n), n, mib(after), running)
	t.Logf("host MemAvailable: %.0f MiB before, %.0f MiB after (%+.0f MiB)", mib(hostBefore), mib(hostAfter), mib(hostAfter)-mib(hostBefore))
	if running != 0 {
		t.Errorf("%d workspaces still run after the idle stop", running)
	}
}

// workspaceMemory sums the memory docker stats shows for the projects' running containers
// (usage less inactive file cache, as the docker CLI counts it).
func workspaceMemory(t *testing.T, docker *dockerclient.Client, ids []string) (bytes uint64, running int) {
	t.Helper()
	for _, id := range ids {
		if _, up := containerRunning(t, docker, id); !up {
			continue
		}
		running++
		resp, err := docker.ContainerStatsOneShot(context.Background(), "doce-"+id+"-opencode")
		if err != nil {
			t.Fatal(err)
		}
		var st container.StatsResponse
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		bytes += st.MemoryStats.Usage - st.MemoryStats.Stats["inactive_file"]
	}
	return bytes, running
}

func memAvailable(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no MemAvailable in /proc/meminfo")
	return 0
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
