package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dockerclient "github.com/docker/docker/client"
)

// hostedProject is a project as an administrator sees it: where it runs, and whether that host
// is there.
type hostedProject struct {
	ID, Status, SetupStep, SetupError, Host, HostState, WorkflowID string
}

func getHosted(t *testing.T, hc *recordingClient, doce *doceProcess, id string) hostedProject {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("project %s: %d %s", id, status, body)
	}
	var v struct{ Project hostedProject }
	json.Unmarshal(body, &v)
	return v.Project
}

// waitHosted waits until cond holds for the project, and returns it.
func waitHosted(t *testing.T, hc *recordingClient, doce *doceProcess, id, what string, timeout time.Duration, cond func(hostedProject) bool) hostedProject {
	t.Helper()
	var p hostedProject
	waitFor(t, "project "+id+" "+what, timeout, func() (bool, error) {
		p = getHosted(t, hc, doce, id)
		return cond(p), fmt.Errorf("%+v", p)
	})
	return p
}

// createMany creates n projects at once and returns their ids.
func createMany(t *testing.T, hc *recordingClient, doce *doceProcess, n int, prompt string) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); ids[i] = createProject(t, hc, doce, fmt.Sprintf("%s %d", prompt, i)).ID }()
	}
	wg.Wait()
	return ids
}

// hostStates reads the hosts' states off /api/v1/ops/hosts.
func hostStates(t *testing.T, hc *recordingClient, doce *doceProcess) map[string]string {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/ops/hosts", nil)
	if status != http.StatusOK {
		t.Fatalf("hosts: %d %s", status, body)
	}
	var v struct {
		Hosts []struct{ Name, State string }
	}
	json.Unmarshal(body, &v)
	out := map[string]string{}
	for _, h := range v.Hosts {
		out[h.Name] = h.State
	}
	return out
}

// TestManyDockerHosts runs doce with two workers, each serving its own Docker engine on this
// machine (the main one, and a second dockerd with its own socket, roots, bridges and address
// pool, publishing on 127.0.0.2): ten projects at once spread over both; a drained host takes
// none; a host whose worker is killed shows its projects as host unreachable while setups on the
// other host complete, and its own setups finish once its worker is back; teardown removes
// everything from the engine each project was on.
func TestManyDockerHosts(t *testing.T) {
	stack := requireStack(t)
	engineA := dockerClient(t)
	b := startDockerEngine(t, stack.OpenCodeImage)
	engines := map[string]*dockerclient.Client{"a": engineA, "b": b.Client}
	doce := newDoce(t, stack, fmt.Sprintf("hosts-%d", time.Now().UnixNano()), []string{"DOCE_HOST_HEARTBEAT=1s"})
	doce.start(t, "serve")
	workerA := []string{"DOCE_HOST_NAME=a"}
	// b's workspaces find host.docker.internal where a's do: its egress proxy needs a port of its own.
	workerB := []string{"DOCE_HOST_NAME=b", "DOCKER_HOST=" + b.Host, "DOCE_WORKSPACE_HOST=127.0.0.2", "DOCE_HOST_GATEWAY=" + hostGatewayIP(t), "DOCE_EGRESS_PROXY_PORT=" + freePort(t)}
	doce.startAs(t, "worker-a", "worker", workerA...)
	doce.startAs(t, "worker-b", "worker", workerB...)
	doce.waitHealthy(t)
	hc := admin(t, doce, "sk-e2e-hosts")
	waitFor(t, "both hosts registered and ready", time.Minute, func() (bool, error) {
		s := hostStates(t, hc, doce)
		return s["a"] == "ready" && s["b"] == "ready", fmt.Errorf("%v", s)
	})

	// Ten at once: placed on the least loaded host each, one at a time, so five and five.
	start := time.Now()
	ids := createMany(t, hc, doce, 10, "spread over two hosts")
	on := map[string][]string{}
	for _, id := range ids {
		p := waitHosted(t, hc, doce, id, "ready", 6*time.Minute, func(p hostedProject) bool { return p.Status == "ready" })
		on[p.Host] = append(on[p.Host], id)
		if p.HostState != "ready" {
			t.Errorf("project %s on %s: host state %q, want ready", id, p.Host, p.HostState)
		}
	}
	t.Logf("10 setups over two hosts ready in %s: %d on a, %d on b", time.Since(start).Round(100*time.Millisecond), len(on["a"]), len(on["b"]))
	if len(on["a"]) != 5 || len(on["b"]) != 5 {
		t.Fatalf("placed %d on a and %d on b, want 5 and 5", len(on["a"]), len(on["b"]))
	}
	recordHistory(t, stack, getHosted(t, hc, doce, on["b"][0]).WorkflowID, "project_setup_hosts.json")
	// Each workspace is on its own host's engine only, and answers there (b's through
	// 127.0.0.2: the web tier reaches each host at the address its worker registered).
	for host, hostIDs := range on {
		for _, id := range hostIDs {
			for name, docker := range engines {
				want := 0
				if name == host {
					want = 1
				}
				if n := containersOf(t, docker, id); n != want {
					t.Fatalf("project %s (on %s): %d containers on engine %s, want %d", id, host, n, name, want)
				}
			}
		}
		// Ten OpenCode servers loading their first instance at once answer slowly here: a
		// request that times out is asked again.
		waitFor(t, "the sessions of a project on "+host+" through the web tier", 3*time.Minute, func() (bool, error) {
			resp, err := hc.Get(doce.URL + "/api/v1/projects/" + hostIDs[0] + "/sessions")
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, fmt.Errorf("status %d", resp.StatusCode)
		})
	}
	listed := map[string]string{}
	out := doceCommand(t, doce, "hosts", "list")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 {
			listed[f[0]] = f[1] + " " + f[2]
		}
	}
	if listed["a"] != "ready 5" || listed["b"] != "ready 5" {
		t.Errorf("doce hosts list shows %v, want both ready with 5 projects:\n%s", listed, out)
	}

	// A drained host takes no new project; its own keep working.
	doceCommand(t, doce, "hosts", "drain", "b")
	drained := createMany(t, hc, doce, 3, "while b is drained")
	for _, id := range drained {
		if p := waitHosted(t, hc, doce, id, "ready", 4*time.Minute, func(p hostedProject) bool { return p.Status == "ready" }); p.Host != "a" {
			t.Fatalf("project %s placed on %s while b was drained", id, p.Host)
		}
	}
	if resp, err := hc.Get(doce.URL + "/api/v1/projects/" + on["b"][0] + "/sessions"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a project on drained b: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	on["a"] = append(on["a"], drained...)
	doceCommand(t, doce, "hosts", "undrain", "b")

	// b's worker dies with two setups of its own in flight.
	doceCommand(t, doce, "hosts", "drain", "a")
	inFlight := createMany(t, hc, doce, 2, "on b when its worker dies")
	for _, id := range inFlight {
		waitHosted(t, hc, doce, id, "placed on b", time.Minute, func(p hostedProject) bool { return p.Host == "b" })
	}
	doce.kill9(t, "worker-b")
	killed := time.Now()
	doceCommand(t, doce, "hosts", "undrain", "a")
	for _, id := range append(append([]string{}, on["b"]...), inFlight...) {
		waitHosted(t, hc, doce, id, "host unreachable", 30*time.Second, func(p hostedProject) bool { return p.HostState == "unreachable" })
	}
	t.Logf("b's projects show host unreachable %s after its worker died", time.Since(killed).Round(100*time.Millisecond))
	resp, err := hc.Get(doce.URL + "/projects/" + on["b"][0])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.Contains(hc.responses(), "Host unreachable") {
		t.Errorf("the project page does not say its host is unreachable")
	}
	// Setups go on on a meanwhile.
	meanwhile := createMany(t, hc, doce, 2, "on a while b is gone")
	for _, id := range meanwhile {
		p := waitHosted(t, hc, doce, id, "ready", 4*time.Minute, func(p hostedProject) bool { return p.Status == "ready" })
		if p.Host != "a" {
			t.Fatalf("project %s placed on %s while b was unreachable", id, p.Host)
		}
	}
	on["a"] = append(on["a"], meanwhile...)
	for _, id := range inFlight {
		if p := getHosted(t, hc, doce, id); p.Status == "ready" {
			t.Fatalf("project %s on b got ready without b's worker", id)
		}
	}
	// b's worker comes back: its setups finish, its projects are reachable again.
	doce.startAs(t, "worker-b", "worker", workerB...)
	for _, id := range inFlight {
		waitHosted(t, hc, doce, id, "ready on b", 4*time.Minute, func(p hostedProject) bool {
			return p.Status == "ready" && p.Host == "b" && p.HostState == "ready"
		})
	}
	for _, id := range on["b"] {
		waitHosted(t, hc, doce, id, "reachable again", 30*time.Second, func(p hostedProject) bool { return p.HostState == "ready" })
	}
	on["b"] = append(on["b"], inFlight...)

	// Teardown removes every project's containers, networks and volumes from its own engine.
	var all []string
	for _, hostIDs := range on {
		all = append(all, hostIDs...)
	}
	for _, id := range all {
		if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+id, nil); status != http.StatusAccepted {
			t.Fatalf("delete %s: %d %s", id, status, body)
		}
	}
	waitFor(t, "every project's teardown done", 3*time.Minute, func() (bool, error) {
		for _, id := range all {
			if status, _ := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil); status != http.StatusNotFound {
				return false, fmt.Errorf("project %s: %d", id, status)
			}
		}
		return true, nil
	})
	for _, id := range all {
		for name, docker := range engines {
			if n := objectsOf(t, docker, id); n != 0 {
				t.Errorf("project %s: %d Docker objects left on engine %s after its teardown", id, n, name)
			}
		}
	}
	recordHistory(t, stack, "project-teardown:"+on["b"][0], "project_teardown_hosts.json")
}
