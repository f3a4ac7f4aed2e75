package activities

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/worker"

	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// deadPort is a loopback port nothing listens on: where a restarted container was published.
func deadPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// Docker restarts an OpenCode that exited and publishes the container on new host ports: the
// setup's wait finds it there and records the ports for every later step.
func TestWaitHealthyFollowsAContainerRestartedOnNewPorts(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if err := r.st.RecordPorts(r.ctx, p.ID, deadPort(t), 0); err != nil {
		t.Fatal(err)
	}
	r.ws.seen = workspace.Container{Status: "running", Restarts: 1, ExitCode: 1, HostPort: r.oc.port()}

	if _, err := r.env.ExecuteActivity(r.acts.WaitHealthy, workflows.StepInput{ProjectID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if got := r.reload(t, p.ID).HostPort; got != r.oc.port() {
		t.Errorf("recorded host port %d, want %d where the container is now", got, r.oc.port())
	}
	if n := r.oc.count("GET /global/health"); n != 1 {
		t.Errorf("OpenCode asked %d times, want once, where it is", n)
	}
}

// A wait that runs out on a container Docker keeps restarting says so, with how OpenCode last
// exited: the operator's first question.
func TestWaitHealthySaysWhatBecameOfTheContainer(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if err := r.st.RecordPorts(r.ctx, p.ID, deadPort(t), 0); err != nil {
		t.Fatal(err)
	}
	r.ws.running = false
	r.ws.seen = workspace.Container{Status: "restarting", Restarts: 3, ExitCode: 137, OOMKilled: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*lookEvery)
	defer cancel()
	r.env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})

	start := time.Now()
	_, err := r.env.ExecuteActivity(r.acts.WaitHealthy, workflows.StepInput{ProjectID: p.ID})
	if err == nil {
		t.Fatal("WaitHealthy succeeded on a container that never ran")
	}
	want := "container restarting, restarted 3 times, last exit code 137 (out of memory)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the wait took %s past its deadline", d)
	}
}

// A container can run while nothing accepts on its published port: the docker-proxy that
// publishes it died, and Docker does not notice. The wait restarts the container once, which
// publishes it again, and records where.
func TestWaitHealthyRestartsAContainerWhosePortLeadsNowhere(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	dead := deadPort(t)
	if err := r.st.RecordPorts(r.ctx, p.ID, dead, 0); err != nil {
		t.Fatal(err)
	}
	r.ws.seen = workspace.Container{Status: "running", HostPort: dead}
	r.ws.startsOn = r.oc.port()

	if _, err := r.env.ExecuteActivity(r.acts.WaitHealthy, workflows.StepInput{ProjectID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if r.ws.starts != 1 {
		t.Errorf("the container was started %d times, want once", r.ws.starts)
	}
	if got := r.reload(t, p.ID).HostPort; got != r.oc.port() {
		t.Errorf("recorded host port %d, want %d where the restarted container is published", got, r.oc.port())
	}
}
