package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// Fault tests: the real stack with one part failing at a chosen moment. Each ends with one
// container, one OpenCode session and one prompt per project.

// admin signs in as the first admin and connects the custom provider with key.
func admin(t *testing.T, doce *doceProcess, key string) *recordingClient {
	t.Helper()
	hc := newClient(t)
	resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	return hc
}

type projectState struct {
	ID, Status, SetupStep, SetupError, WorkflowID string
	SetupAttempt                                  int
}

func createProject(t *testing.T, hc *recordingClient, doce *doceProcess, prompt string) projectState {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create project: %d %s", status, body)
	}
	var v struct{ Project projectState }
	json.Unmarshal(body, &v)
	return v.Project
}

func getProject(t *testing.T, hc *recordingClient, doce *doceProcess, id string) projectState {
	t.Helper()
	_, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
	var v struct{ Project projectState }
	json.Unmarshal(body, &v)
	return v.Project
}

func waitStatus(t *testing.T, hc *recordingClient, doce *doceProcess, id, want string, timeout time.Duration) projectState {
	t.Helper()
	var p projectState
	waitFor(t, "project "+want, timeout, func() (bool, error) {
		p = getProject(t, hc, doce, id)
		return p.Status == want, fmt.Errorf("status %s at %s (attempt %d): %s", p.Status, p.SetupStep, p.SetupAttempt, p.SetupError)
	})
	return p
}

// assertOneOfEach checks the project has one container, and its OpenCode one session holding
// one user message with the prompt.
func assertOneOfEach(t *testing.T, docker *dockerclient.Client, projectID, prompt string) {
	t.Helper()
	ctx := context.Background()
	cs, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("%d containers (err %v), want 1", len(cs), err)
	}
	ci, err := docker.ContainerInspect(ctx, cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + ci.NetworkSettings.Ports["4096/tcp"][0].HostPort
	password := envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD")
	get := func(path string, out any) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.SetBasicAuth("opencode", password)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req) // OpenCode is slow on a loaded machine
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("OpenCode GET %s: %d %s", path, resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("OpenCode GET %s: %v in %.300s", path, err, body)
		}
	}
	var sessions []struct{ ID string }
	get("/session", &sessions)
	if len(sessions) != 1 {
		t.Fatalf("%d OpenCode sessions, want 1", len(sessions))
	}
	// OpenCode stores a message's parts after the message itself, seconds later on a loaded
	// machine: wait until the user messages have them.
	var userMsgs, prompts int
	waitFor(t, "the prompt in the session", time.Minute, func() (bool, error) {
		var msgs []struct {
			Info  struct{ Role string }
			Parts []struct{ Type, Text string }
		}
		get("/session/"+sessions[0].ID+"/message", &msgs)
		userMsgs, prompts = 0, 0
		complete := true
		for _, m := range msgs {
			if m.Info.Role != "user" {
				continue
			}
			userMsgs++
			complete = complete && len(m.Parts) > 0
			for _, part := range m.Parts {
				if strings.Contains(part.Text, prompt) {
					prompts++
				}
			}
		}
		return userMsgs > 0 && complete, fmt.Errorf("%d user messages among %d in session %s", userMsgs, len(msgs), sessions[0].ID)
	})
	if userMsgs != 1 || prompts != 1 {
		t.Fatalf("%d user messages, %d with the prompt; want 1 and 1", userMsgs, prompts)
	}
}

// sessionDump is what the project's OpenCode holds, for a failure message: its sessions and
// the last one's messages, raw and cut short.
func sessionDump(docker *dockerclient.Client, projectID string) string {
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil || len(ci.NetworkSettings.Ports["4096/tcp"]) == 0 {
		return fmt.Sprintf("no workspace to ask: %v", err)
	}
	base := "http://127.0.0.1:" + ci.NetworkSettings.Ports["4096/tcp"][0].HostPort
	get := func(path string) []byte {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.SetBasicAuth("opencode", envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD"))
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return []byte(err.Error())
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return b
	}
	sessions := get("/session")
	var ss []struct{ ID string }
	json.Unmarshal(sessions, &ss)
	out := fmt.Sprintf("sessions %.500s", sessions)
	if len(ss) > 0 {
		out += fmt.Sprintf("; messages of %s: %.3000s", ss[len(ss)-1].ID, get("/session/"+ss[len(ss)-1].ID+"/message"))
	}
	// What OpenCode itself logged last: why a prompt it accepted never reached the LLM.
	log, _ := exec.Command("docker", "exec", ci.ID, "sh", "-c", `tail -n 40 "$HOME"/.local/share/opencode/log/*.log`).CombinedOutput()
	return out + fmt.Sprintf("; OpenCode's log:\n%.6000s", log)
}

func dockerClient(t *testing.T) *dockerclient.Client {
	t.Helper()
	docker, err := dockerclient.NewClientWithOpts(dockerclient.FromEnv, dockerclient.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.Close() })
	return docker
}

// TestWorkerKilledAtEachStep kills the worker with SIGKILL while each setup step is in flight
// and starts a new one: every setup completes with one container, one session, one prompt.
// For the OpenCode steps the proxy holds the step's request, so the kill lands inside the step;
// the held request then reaches OpenCode anyway, as one already on the wire would.
func TestWorkerKilledAtEachStep(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	proxy := startFaultProxy(t)
	doce := startDoceSplit(t, stack, fmt.Sprintf("e2e-kill-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-kill")

	for _, tc := range []struct {
		step, method, path string // path "": no OpenCode request, kill when the step shows
	}{
		{"docker.composeUp", "", ""},
		{"opencode.waitHealthy", "GET", "/global/health"},
		{"opencode.setProviderCredentials", "PUT", "/auth/"},
		{"opencode.sessionCreate", "POST", "/session"},
		{"opencode.sendInitialPrompt", "POST", "/session/ses"}, // .../prompt_async
	} {
		t.Run(tc.step, func(t *testing.T) {
			start := time.Now()
			prompt := "kill at " + tc.step
			var held <-chan struct{}
			release := func() {}
			if tc.path != "" {
				held, release = proxy.hold(tc.method, tc.path)
				defer release()
			}
			p := createProject(t, hc, doce, prompt)
			if held != nil {
				select {
				case <-held:
				case <-time.After(2 * time.Minute):
					t.Fatalf("no %s %s within 2 min", tc.method, tc.path)
				}
			} else {
				waitFor(t, "step "+tc.step, time.Minute, func() (bool, error) {
					got := getProject(t, hc, doce, p.ID)
					return got.SetupStep == tc.step, fmt.Errorf("at %q", got.SetupStep)
				})
			}
			doce.kill9(t, "worker")
			release()
			doce.start(t, "worker")
			waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
			assertOneOfEach(t, docker, p.ID, prompt)
			t.Logf("killed in %s: completed in %s", tc.step, time.Since(start).Round(100*time.Millisecond))
		})
	}
}

// TestOpenCodeRefusesAuthThenOperatorRetries makes OpenCode answer 500 to PUT /auth: the step
// is tried 3 times, 1 s then 2 s apart, then the setup waits; with the fault gone, a retry
// completes it.
func TestOpenCodeRefusesAuthThenOperatorRetries(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-auth500-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-auth500")
	proxy.fail("PUT", "/auth/", http.StatusInternalServerError)

	start := time.Now()
	p := createProject(t, hc, doce, "auth fails")
	p = waitStatus(t, hc, doce, p.ID, "failed", 2*time.Minute)
	if p.SetupStep != "opencode.setProviderCredentials" || !strings.Contains(p.SetupError, "HTTP 500") {
		t.Fatalf("stopped at %s: %q", p.SetupStep, p.SetupError)
	}
	hits := proxy.hitTimes("PUT", "/auth/")
	if len(hits) != 3 {
		t.Fatalf("PUT /auth tried %d times, want 3", len(hits))
	}
	gap1, gap2 := hits[1].Sub(hits[0]), hits[2].Sub(hits[1])
	if gap1 < 900*time.Millisecond || gap1 > 1800*time.Millisecond || gap2 < 1900*time.Millisecond || gap2 > 3*time.Second {
		t.Errorf("attempts %s and %s apart, want about 1 s and 2 s", gap1, gap2)
	}
	t.Logf("PUT /auth: 3 attempts, %s and %s apart; waiting after %s", gap1.Round(10*time.Millisecond), gap2.Round(10*time.Millisecond), time.Since(start).Round(100*time.Millisecond))

	proxy.clear()
	// The operator retries from the ops API (what the ops page's "Retry selected" posts).
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/ops/setups/retry", map[string]any{"projectIds": []string{p.ID, "no-such-project"}})
	var res struct {
		Results []struct {
			ProjectID string
			OK        bool
			Message   string
		}
	}
	json.Unmarshal(body, &res)
	if status != http.StatusOK || len(res.Results) != 2 || !res.Results[0].OK || res.Results[1].OK || res.Results[1].Message != "No such project." {
		t.Fatalf("ops retry: %d %s", status, body)
	}
	waitStatus(t, hc, doce, p.ID, "ready", 2*time.Minute)
	assertOneOfEach(t, docker, p.ID, "auth fails")
	t.Logf("completed %s after the fault was removed", time.Since(start).Round(100*time.Millisecond))
}

// TestConcurrentProjects creates 10 projects at once (the seed's load test): all complete,
// each with its own container and port.
func TestConcurrentProjects(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-ten-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-e2e-ten")
	const n = 10
	start := time.Now()
	ids := make(chan string, n)
	for i := range n {
		go func() { ids <- createProject(t, hc, doce, fmt.Sprintf("project %d of ten", i)).ID }()
	}
	ports := map[string]string{}
	for range n {
		id := <-ids
		waitStatus(t, hc, doce, id, "ready", 5*time.Minute)
		cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+id))})
		if err != nil || len(cs) != 1 || len(cs[0].Ports) == 0 {
			t.Fatalf("project %s: %d containers, %v", id, len(cs), err)
		}
		port := fmt.Sprint(cs[0].Ports[0].PublicPort)
		if other, dup := ports[port]; dup {
			t.Fatalf("projects %s and %s share port %s", id, other, port)
		}
		ports[port] = id
	}
	t.Logf("10 concurrent setups completed in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestOpeningAStoppedProjectStartsIt stops a ready project's container: opening the project
// starts it again and hands OpenCode its credentials again.
func TestOpeningAStoppedProjectStartsIt(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-ensure-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-ensure")
	proxy.watch("PUT", "/auth/")

	p := createProject(t, hc, doce, "ensure running")
	waitStatus(t, hc, doce, p.ID, "ready", 2*time.Minute)
	// Ready means OpenCode accepted the prompt; it stores it a moment later. Once it has, the
	// stop and start below must keep it.
	assertOneOfEach(t, docker, p.ID, "ensure running")
	ctx := context.Background()
	name := "doce-" + p.ID + "-opencode"
	if err := docker.ContainerStop(ctx, name, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	authBefore := len(proxy.hitTimes("PUT", "/auth/"))
	start := time.Now()
	resp, err := hc.Get(doce.URL + "/projects/" + p.ID)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("open project: %v %v", resp, err)
	}
	waitFor(t, "container running again", 2*time.Minute, func() (bool, error) {
		ci, err := docker.ContainerInspect(ctx, name)
		if err != nil {
			return false, err
		}
		return ci.State.Running && len(proxy.hitTimes("PUT", "/auth/")) > authBefore, fmt.Errorf("running %v", ci.State.Running)
	})
	t.Logf("stopped workspace running again with credentials %s after the project was opened", time.Since(start).Round(100*time.Millisecond))
	assertOneOfEach(t, docker, p.ID, "ensure running")
}

func openStoreAt(t *testing.T, doce *doceProcess) *store.Store {
	t.Helper()
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// downWorkspace removes a project's Docker objects, whatever state the test left them in.
// downWorkspacesAtEnd removes the workspace of every project doce made, when the test ends.
// The test's own context is canceled by then: the cleanup uses one of its own.
func downWorkspacesAtEnd(t *testing.T, doce *doceProcess) {
	t.Cleanup(func() {
		st := openStoreAt(t, doce)
		defer st.Close()
		ps, _ := st.ProjectsPage(context.Background(), "", 100)
		for _, p := range ps {
			downWorkspace(p.ID)
		}
	})
}

func downWorkspace(projectID string) {
	if ws, err := workspace.NewManager("127.0.0.1"); err == nil {
		ws.Down(context.Background(), projectID)
		ws.Close()
	}
}

// TestSetupRepublishesAWorkspaceWhosePortLeadsNowhere kills the docker-proxy that publishes a
// setting-up workspace's OpenCode port: the container runs on, and Docker never notices that
// nothing accepts on its port any more. The setup restarts the container once, which
// publishes it again on a new port, records that port and completes.
func TestSetupRepublishesAWorkspaceWhosePortLeadsNowhere(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-republish-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-republish")
	// The setup keeps polling while the test takes the port away.
	proxy.fail("GET", "/global/health", http.StatusServiceUnavailable)

	ctx := context.Background()
	p := createProject(t, hc, doce, "republish")
	name := "doce-" + p.ID + "-opencode"
	var dead string
	waitFor(t, "the workspace published", 2*time.Minute, func() (bool, error) {
		ci, err := docker.ContainerInspect(ctx, name)
		if err != nil {
			return false, err
		}
		if b := ci.NetworkSettings.Ports["4096/tcp"]; ci.State.Running && len(b) > 0 {
			dead = b[0].HostPort
		}
		return dead != "", fmt.Errorf("running %v", ci.State.Running)
	})
	pid, err := dockerProxyPID(dead)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the published port refusing", 10*time.Second, func() (bool, error) {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+dead, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil, errors.New("still accepting")
	})
	start := time.Now()
	proxy.clear()

	waitStatus(t, hc, doce, p.ID, "ready", 2*time.Minute)
	ci, err := docker.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	now := ci.NetworkSettings.Ports["4096/tcp"][0].HostPort
	st := openStoreAt(t, doce)
	defer st.Close()
	sp, err := st.Project(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if now == dead || fmt.Sprint(sp.HostPort) != now {
		t.Fatalf("published on %s (was %s), recorded %d", now, dead, sp.HostPort)
	}
	assertOneOfEach(t, docker, p.ID, "republish")
	if !strings.Contains(doce.Logs.String(), "nothing accepts on its published port") {
		t.Error("the worker's log does not say why it restarted the workspace")
	}
	t.Logf("port %s led nowhere: republished on %s, ready %s after the health fault was removed", dead, now, time.Since(start).Round(100*time.Millisecond))
}

// dockerProxyPID finds the docker-proxy process that publishes hostPort.
func dockerProxyPID(hostPort string) (int, error) {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if !strings.HasSuffix(args[0], "docker-proxy") {
			continue
		}
		for i := range len(args) - 1 {
			if args[i] == "-host-port" && args[i+1] == hostPort {
				return strconv.Atoi(filepath.Base(filepath.Dir(f)))
			}
		}
	}
	return 0, fmt.Errorf("no docker-proxy publishes port %s", hostPort)
}
