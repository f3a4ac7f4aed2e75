package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/workspace"
)

// TestFailedSetupWaitsForOperatorThenRetryCompletes runs a setup whose workspace image is
// missing: the setup stops at docker.composeUp and waits, findable in Temporal by its search
// attributes. An operator builds the image and presses Retry: the setup resumes and completes.
// Deleting the project then leaves no Docker object behind.
func TestFailedSetupWaitsForOperatorThenRetryCompletes(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	ctx := context.Background()
	docker := dockerClient(t)
	missing := fmt.Sprintf("doce/opencode-e2e-missing:%d", time.Now().UnixNano())
	t.Cleanup(func() { docker.ImageRemove(context.Background(), missing, image.RemoveOptions{}) })
	doce := startDoce(t, stack, fmt.Sprintf("e2e-retry-%d", time.Now().UnixNano()), "DOCE_OPENCODE_IMAGE="+missing)
	hc := admin(t, doce, "sk-e2e-retry")
	created := createProject(t, hc, doce, "hello")
	id := created.ID

	type view struct {
		Project struct {
			Status, SetupStep, SetupError string
			Progress                      struct{ State string }
		}
	}
	get := func() view {
		var v view
		_, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
		json.Unmarshal(body, &v)
		return v
	}
	waitFor(t, "setup stops at the missing image", time.Minute, func() (bool, error) {
		v := get()
		return v.Project.Status == "failed", fmt.Errorf("status %s", v.Project.Status)
	})
	v := get()
	if v.Project.SetupStep != "docker.composeUp" || v.Project.Progress.State != "waiting-for-operator" {
		t.Fatalf("stopped at %q in state %q", v.Project.SetupStep, v.Project.Progress.State)
	}
	if want := "The workspace image " + missing + " is not on the Docker host."; len(v.Project.SetupError) < len(want) || v.Project.SetupError[:len(want)] != want {
		t.Errorf("reason %q, want it to start with %q", v.Project.SetupError, want)
	}

	// Operators find it in Temporal by its search attributes.
	tc, err := client.Dial(client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	query := fmt.Sprintf("DoceSetupState = 'waiting-for-operator' AND DoceProjectID = '%s' AND DoceSetupStep = 'docker.composeUp'", id)
	waitFor(t, "visibility lists the waiting setup", 30*time.Second, func() (bool, error) {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return false, err
		}
		return len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == created.WorkflowID, fmt.Errorf("%d found", len(resp.Executions))
	})

	// The cause: the image is missing. Build (here: tag) it.
	if err := docker.ImageTag(ctx, stack.OpenCodeImage, missing); err != nil {
		t.Fatal(err)
	}
	// The ops API and `doce setups list` show it with its step and reason.
	waitFor(t, "ops lists the waiting setup", 30*time.Second, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/ops/setups", nil)
		var ops struct {
			Setups []struct{ ProjectID, Owner, State, Step, Reason, TemporalURL string }
		}
		json.Unmarshal(body, &ops)
		for _, su := range ops.Setups {
			if su.ProjectID == id {
				if su.Owner != "admin" || su.State != "waiting-for-operator" || su.Step != "docker.composeUp" || su.Reason == "" ||
					!strings.Contains(su.TemporalURL, "/workflows/project-setup:"+id+"/") {
					t.Fatalf("ops entry %+v", su)
				}
				return true, nil
			}
		}
		return false, fmt.Errorf("GET /api/v1/ops/setups: %d, %d listed", status, len(ops.Setups))
	})
	out := doceCommand(t, doce, "setups", "list")
	if !strings.Contains(out, id) || !strings.Contains(out, "waiting-for-operator") || !strings.Contains(out, "docker.composeUp") {
		t.Errorf("doce setups list does not show the setup:\n%s", out)
	}

	// The operator fixes the cause; two retries race (the owner's and the ops API's): the run's
	// update validator takes exactly one, and the other caller learns at once that it was not.
	type answer struct {
		status int
		body   []byte
	}
	answers := make(chan answer, 2)
	for _, path := range []string{"/api/v1/projects/" + id + "/retry", "/api/v1/ops/setups/retry"} {
		go func() {
			var in any
			if strings.Contains(path, "ops") {
				in = map[string]any{"projectIds": []string{id}}
			}
			status, body := apiCall(t, hc, doce.URL, "POST", path, in)
			answers <- answer{status, body}
		}()
	}
	taken, refused := 0, 0
	for range 2 {
		a := <-answers
		switch {
		case a.status == http.StatusAccepted, a.status == http.StatusOK && strings.Contains(string(a.body), `"ok":true`):
			taken++
		case a.status == http.StatusConflict && strings.Contains(string(a.body), "not waiting for an operator"),
			a.status == http.StatusOK && strings.Contains(string(a.body), "not waiting for an operator"):
			refused++
		default:
			t.Fatalf("retry answered %d %s", a.status, a.body)
		}
	}
	if taken != 1 || refused != 1 {
		t.Fatalf("two retries at once: %d taken, %d refused; want 1 and 1", taken, refused)
	}
	// The setup runs again: a retry now is refused by the run, as is one from the shell.
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects/"+id+"/retry", nil)
	expectError(t, status, body, http.StatusConflict, "not waiting for an operator")
	cmd := exec.Command(doceBinary(t), "setups", "retry", id)
	cmd.Env = doce.Env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), id+": not done") || !strings.Contains(string(out), "not waiting") {
		t.Errorf("doce setups retry of a running setup: %v\n%s", err, out)
	}
	waitFor(t, "retried setup completes", 2*time.Minute, func() (bool, error) {
		v := get()
		if v.Project.Status == "failed" {
			t.Fatalf("failed again: %s", v.Project.SetupError)
		}
		return v.Project.Status == "ready", fmt.Errorf("status %s", v.Project.Status)
	})
	// project_setup_retried.json is a run from before the retry update; this one has it.
	recordHistory(t, stack, created.WorkflowID, "project_setup_retried_update.json")
	if v := get(); v.Project.Progress.State != "completed" {
		t.Errorf("progress state %q after retry", v.Project.Progress.State)
	}
	byLabel := filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+id))
	cs, _ := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: byLabel})
	if len(cs) != 1 {
		t.Fatalf("%d containers after retry, want 1", len(cs))
	}

	// Delete: the teardown removes every Docker object and the project disappears.
	status, body = apiCall(t, hc, doce.URL, "DELETE", "/api/v1/projects/"+id, nil)
	if status != http.StatusAccepted {
		t.Fatalf("delete: %d %s", status, body)
	}
	waitFor(t, "project deleted", time.Minute, func() (bool, error) {
		status, _ := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+id, nil)
		return status == http.StatusNotFound, fmt.Errorf("GET project: %d", status)
	})
	recordHistory(t, stack, "project-teardown:"+id, "project_teardown.json")
	cs, _ = docker.ContainerList(ctx, container.ListOptions{All: true, Filters: byLabel})
	vs, _ := docker.VolumeList(ctx, volume.ListOptions{Filters: byLabel})
	ns, _ := docker.NetworkList(ctx, network.ListOptions{Filters: byLabel})
	if len(cs)+len(vs.Volumes)+len(ns) != 0 {
		t.Errorf("left behind: %d containers, %d volumes, %d networks", len(cs), len(vs.Volumes), len(ns))
	}
}

// doceCommand runs a doce subcommand with the test instance's environment.
func doceCommand(t testing.TB, doce *doceProcess, args ...string) string {
	t.Helper()
	cmd := exec.Command(doceBinary(t), args...)
	cmd.Env = doce.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("doce %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOperatorCommandsFromTheDocs runs the rest of docs/operations.md's commands as an
// operator would: two setups stop at a missing image; `doce setups cancel` ends one,
// `doce setups retry -all` resumes the other once the image is there; then, with doce stopped,
// `doce migrate down` undoes the last group (here the install's, so everything) and
// `doce migrate` applies it again.
func TestOperatorCommandsFromTheDocs(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	missing := fmt.Sprintf("doce/opencode-e2e-missing:%d", time.Now().UnixNano())
	t.Cleanup(func() { docker.ImageRemove(context.Background(), missing, image.RemoveOptions{}) })
	doce := startDoce(t, stack, fmt.Sprintf("e2e-ops-%d", time.Now().UnixNano()), "DOCE_OPENCODE_IMAGE="+missing)
	hc := admin(t, doce, "sk-e2e-ops")
	cancelled := createProject(t, hc, doce, "to cancel")
	retried := createProject(t, hc, doce, "to retry")
	// migrate down empties the database the clean-up finds workspaces in.
	t.Cleanup(func() { downWorkspace(retried.ID) })
	waitStatus(t, hc, doce, cancelled.ID, "failed", time.Minute)
	waitStatus(t, hc, doce, retried.ID, "failed", time.Minute)

	if out := doceCommand(t, doce, "setups", "cancel", cancelled.ID); !strings.Contains(out, cancelled.ID+": cancel accepted") {
		t.Fatalf("doce setups cancel: %s", out)
	}
	waitStatus(t, hc, doce, cancelled.ID, "cancelled", time.Minute)
	waitFor(t, "the cancelled setup's run ends", time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+cancelled.ID, nil)
		return status == http.StatusOK && strings.Contains(string(body), `"state":"cancelled"`), fmt.Errorf("%d %.200s", status, body)
	})
	recordHistory(t, stack, "project-setup:"+cancelled.ID, "project_setup_cancelled_update.json")
	if err := docker.ImageTag(context.Background(), stack.OpenCodeImage, missing); err != nil {
		t.Fatal(err)
	}
	// -all finds the waiting setups through Temporal's visibility, which lags a moment.
	waitFor(t, "retry -all finds the waiting setup", 30*time.Second, func() (bool, error) {
		cmd := exec.Command(doceBinary(t), "setups", "retry", "-all")
		cmd.Env = doce.Env
		out, err := cmd.CombinedOutput()
		return strings.Contains(string(out), retried.ID+": retry accepted"), fmt.Errorf("%s %w", out, err)
	})
	waitStatus(t, hc, doce, retried.ID, "ready", 2*time.Minute)

	for _, c := range doce.procs {
		c.stop()
	}
	doce.procs = map[string]*childProcess{}
	for _, cmd := range [][]string{{"migrate", "down"}, {"migrate"}} {
		out := doceCommand(t, doce, cmd...)
		if !strings.Contains(out, "20261126000001_init") || !strings.Contains(out, "20261126000005_oauth_account") {
			t.Errorf("doce %s did not name the install's group:\n%s", strings.Join(cmd, " "), out)
		}
	}
	doce.start(t, "dev")
	doce.waitHealthy(t)
	resp, err := http.Get(doce.URL + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after down and up: %v %v", resp, err)
	}
	resp.Body.Close()
}
