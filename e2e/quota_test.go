package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/doce-dev/doce/workspace"
)

// TestQuotas runs a user into each quota on the real stack: running workspaces (a create and a
// start refused with 403), projects (403) and projects made per hour (429 with Retry-After).
// Each refusal leaves everything as it was: the same projects in the same states, the same
// containers in the same states. A workspace gets the CPU limit configured.
func TestQuotas(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-quota-%d", time.Now().UnixNano()),
		"DOCE_QUOTA_PROJECTS=2", "DOCE_QUOTA_RUNNING=1", "DOCE_QUOTA_CREATE_PER_HOUR=3", "DOCE_WORKSPACE_CPUS=0.5")
	hc := admin(t, doce, "sk-e2e-quota")
	docker := dockerClient(t)

	// snapshot is the user's projects with their states, and their containers with theirs.
	snapshot := func() string {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects", nil)
		if status != http.StatusOK {
			t.Fatalf("list projects: %d %s", status, body)
		}
		var v struct{ Projects []projectState }
		json.Unmarshal(body, &v)
		var lines []string
		for _, p := range v.Projects {
			lines = append(lines, "project "+p.ID+" "+p.Status)
			cs, err := docker.ContainerList(context.Background(), container.ListOptions{All: true,
				Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+p.ID))})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				lines = append(lines, "container "+c.Names[0]+" "+c.State)
			}
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n")
	}
	refused := func(what, method, path string, in any, wantStatus int, wantCode string) {
		t.Helper()
		before := snapshot()
		status, body := apiCall(t, hc, doce.URL, method, path, in)
		t.Logf("%s: %d %s", what, status, body)
		if status != wantStatus || !strings.Contains(string(body), `"code":"`+wantCode+`"`) {
			t.Fatalf("%s: %d %s, want %d %s", what, status, body, wantStatus, wantCode)
		}
		if after := snapshot(); after != before {
			t.Errorf("%s changed things:\nbefore:\n%s\nafter:\n%s", what, before, after)
		}
	}
	create := map[string]any{"prompt": "a quota test", "modelId": "mock-model"}
	action := func(id, what, want string) {
		t.Helper()
		if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+id+"/"+what, nil); status != http.StatusAccepted {
			t.Fatalf("%s %s: %d %s", what, id, status, body)
		}
		waitStatus(t, hc, doce, id, want, 3*time.Minute)
	}

	// gone waits until the deleted project is gone, with its network: its address range is free.
	gone := func(id string) {
		t.Helper()
		waitFor(t, "project deleted", 3*time.Minute, func() (bool, error) {
			status, _ := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
			return status == http.StatusNotFound, fmt.Errorf("GET project: %d", status)
		})
		if cs, vs, ns := leftovers(t, docker, id); cs+vs+ns != 0 {
			t.Errorf("deleted project %s left %d containers, %d volumes, %d networks", id, cs, vs, ns)
		}
	}

	a := createProject(t, hc, doce, "first")
	waitStatus(t, hc, doce, a.ID, "ready", 4*time.Minute)
	ci, err := docker.ContainerInspect(context.Background(), "doce-"+a.ID+"-opencode")
	if err != nil || ci.HostConfig.NanoCPUs != 5e8 {
		t.Errorf("workspace CPU limit: %v %v, want 0.5 CPU", ci.HostConfig, err)
	}
	refused("a second running workspace", "POST", "/api/v1/projects", create, http.StatusForbidden, "quota_running")

	action(a.ID, "stop", "stopped")
	b := createProject(t, hc, doce, "second")
	waitStatus(t, hc, doce, b.ID, "ready", 4*time.Minute)
	refused("a third project", "POST", "/api/v1/projects", create, http.StatusForbidden, "quota_projects")
	refused("starting a second workspace", "POST", "/api/v1/projects/"+a.ID+"/start", nil, http.StatusForbidden, "quota_running")

	// Deleted projects free their places, but not the hour's allowance.
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+a.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	gone(a.ID)
	action(b.ID, "stop", "stopped")
	c := createProject(t, hc, doce, "third in the hour")
	waitStatus(t, hc, doce, c.ID, "ready", 4*time.Minute)
	action(c.ID, "stop", "stopped")
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+c.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	gone(c.ID)
	before := snapshot()
	req, _ := http.NewRequest(http.MethodPost, doce.URL+"/api/v1/projects", strings.NewReader(`{"prompt":"a fourth in the hour","modelId":"mock-model"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	t.Logf("a fourth project in the hour: %d, Retry-After %s", resp.StatusCode, resp.Header.Get("Retry-After"))
	if resp.StatusCode != http.StatusTooManyRequests || retry < 3000 || retry > 3600 {
		t.Errorf("a fourth project in the hour: %d Retry-After %q, want 429 and about an hour", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if after := snapshot(); after != before {
		t.Errorf("the refused create changed things:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The project that is left is whole: it starts again.
	action(b.ID, "start", "ready")

	// An administrator lifts this user's quotas over the defaults: the next project is made and
	// runs beside the other. A quota out of range is refused and changes nothing.
	var users struct {
		Users []struct{ ID, Username string }
	}
	status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/admin/users", nil)
	if err := json.Unmarshal(body, &users); status != http.StatusOK || err != nil || len(users.Users) != 1 {
		t.Fatalf("GET users: %d %s", status, body)
	}
	quotas := "/api/v1/admin/users/" + users.Users[0].ID + "/quotas"
	status, body = apiCall(t, hc, doce.URL, "PUT", quotas, map[string]any{"running": -1})
	expectError(t, status, body, http.StatusBadRequest, "A quota is a whole number")
	status, body = apiCall(t, hc, doce.URL, "PUT", quotas, map[string]any{"running": 2, "createPerHour": 0})
	if status != http.StatusOK || !strings.Contains(string(body), `"effective":{"projects":2,"running":2,"createPerHour":0}`) ||
		!strings.Contains(string(body), `"own":{"projects":null,"running":2,"createPerHour":0}`) {
		t.Fatalf("set quotas: %d %s", status, body)
	}
	d := createProject(t, hc, doce, "past the default hourly allowance")
	waitStatus(t, hc, doce, d.ID, "ready", 4*time.Minute)
	refused("a third project, still", "POST", "/api/v1/projects", create, http.StatusForbidden, "quota_projects")
	// Back to the defaults: the running quota holds again.
	if status, body := apiCall(t, hc, doce.URL, "PUT", quotas, map[string]any{}); status != http.StatusOK ||
		!strings.Contains(string(body), `"effective":{"projects":2,"running":1,"createPerHour":3}`) {
		t.Fatalf("reset quotas: %d %s", status, body)
	}
	action(d.ID, "stop", "stopped")
	refused("starting beside the running one, with the defaults back", "POST", "/api/v1/projects/"+d.ID+"/start", nil, http.StatusForbidden, "quota_running")
}

// TestFullAddressPool runs doce on a Docker engine whose address pools hold two networks: the
// worker registers its host for two workspaces, a third project is refused before anything is
// made (503 no_room, with what to do), and deleting a project frees its network for the next.
func TestFullAddressPool(t *testing.T) {
	stack := requireStack(t)
	engine := startDockerEngineWith(t, stack.OpenCodeImage, 2)
	doce := newDoce(t, stack, fmt.Sprintf("e2e-pool-full-%d", time.Now().UnixNano()), []string{"DOCE_HOST_HEARTBEAT=1s"})
	doce.start(t, "serve")
	doce.startAs(t, "worker", "worker", "DOCKER_HOST="+engine.Host, "DOCE_WORKSPACE_HOST=127.0.0.2",
		"DOCE_HOST_GATEWAY="+hostGatewayIP(t), "DOCE_EGRESS_PROXY_PORT="+freePort(t))
	doce.waitHealthy(t)
	hc := admin(t, doce, "sk-e2e-pool-full")
	waitFor(t, "the host registered", time.Minute, func() (bool, error) {
		s := hostStates(t, hc, doce)
		return s["local"] == "ready", fmt.Errorf("%v", s)
	})

	a := createProject(t, hc, doce, "first of two")
	b := createProject(t, hc, doce, "second of two")
	waitStatus(t, hc, doce, a.ID, "ready", 4*time.Minute)
	waitStatus(t, hc, doce, b.ID, "ready", 4*time.Minute)
	networks := func() int {
		t.Helper()
		ns, err := engine.Client.NetworkList(context.Background(), network.ListOptions{
			Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject))})
		if err != nil {
			t.Fatal(err)
		}
		return len(ns)
	}
	before := networks()
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": "a third", "modelId": "mock-model"})
	t.Logf("a third project: %d %s", status, body)
	expectError(t, status, body, http.StatusServiceUnavailable, "Every Docker host is full")
	if after := networks(); after != before || before != 2 {
		t.Errorf("workspace networks on the engine: %d before the refused create, %d after; want 2 and 2", before, after)
	}

	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+a.ID, nil); status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitFor(t, "the project deleted", 3*time.Minute, func() (bool, error) {
		status, _ := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+a.ID, nil)
		return status == http.StatusNotFound, fmt.Errorf("GET project: %d", status)
	})
	// The host counts the project until its delete has finished, network and all.
	waitFor(t, "the host holding one workspace", 3*time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/ops/hosts", nil)
		var v struct {
			Hosts []struct{ Projects, Pooled int }
		}
		json.Unmarshal(body, &v)
		return status == http.StatusOK && len(v.Hosts) == 1 && v.Hosts[0].Projects+v.Hosts[0].Pooled == 1, fmt.Errorf("%d %s", status, body)
	})
	if n := networks(); n != 1 {
		t.Errorf("%d workspace networks after the delete, want 1", n)
	}
	c := createProject(t, hc, doce, "in the freed network")
	waitStatus(t, hc, doce, c.ID, "ready", 4*time.Minute)
}
