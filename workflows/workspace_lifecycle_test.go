package workflows_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/doce-dev/doce/status"
	. "github.com/doce-dev/doce/workflows"
)

// lifecycleEnv is a test environment with the life-cycle workflows and activities registered;
// it records every transition asked for and answers each as the project row would.
type lifecycleEnv struct {
	*testsuite.TestWorkflowEnvironment
	status      status.Project
	transitions []TransitionInput
	stops       []time.Time // when docker.stop ran, in workflow time
	watches     int
	queues      queueLog
}

func newLifecycleEnv(t *testing.T, initial status.Project) *lifecycleEnv {
	e := &lifecycleEnv{TestWorkflowEnvironment: newTestEnv(t), status: initial}

	e.OnActivity(ActTransition, mock.Anything, mock.Anything).Return(func(_ context.Context, in TransitionInput) (bool, error) {
		e.transitions = append(e.transitions, in)
		if !slices.Contains(in.From, e.status) {
			return false, nil
		}
		e.status = in.To
		return true, nil
	})
	e.OnActivity(ActStopWorkspace, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ StepInput) error {
		e.queues.record(ctx)
		e.stops = append(e.stops, e.Now())
		return nil
	})
	e.OnActivity(ActWatchIdle, mock.Anything, mock.Anything).Return(func(context.Context, StepInput) error {
		e.watches++
		return nil
	})
	e.OnRequestCancelExternalWorkflow(mock.Anything, mock.Anything, mock.Anything).Return(errors.New("not running")).Maybe()
	return e
}

func (e *lifecycleEnv) done(t *testing.T) {
	t.Helper()
	if !e.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
}

func TestProjectStopStopsTheContainerAndMarksItStopped(t *testing.T) {
	e := newLifecycleEnv(t, status.Stopping) // the web tier moved it
	e.ExecuteWorkflow(ProjectStop, StepInput{ProjectID: "p1"})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(e.stops) != 1 || e.status != status.Stopped {
		t.Fatalf("%d stops, status %s; want 1 stop, stopped", len(e.stops), e.status)
	}
	if got := e.queues.get(ActStopWorkspace); got[0] != testHost.TaskQueue {
		t.Errorf("stopped on %v, want on the project's host", got)
	}
}

func TestProjectStartRunsTheStartStepsThenWatchesIdle(t *testing.T) {
	e := newLifecycleEnv(t, status.Starting)
	var order []string
	for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials} {
		e.OnActivity(name, mock.Anything, StepInput{ProjectID: "p1"}).Run(func(mock.Arguments) { order = append(order, name) }).Return(nil)
	}
	e.OnActivity(ActComposeUp, mock.Anything, StepInput{ProjectID: "p1"}).Run(func(mock.Arguments) { order = append(order, ActComposeUp) }).Return(ComposeUpResult{HostPort: 1}, nil)
	e.ExecuteWorkflow(ProjectStart, StepInput{ProjectID: "p1"})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	// The credentials are handed over again on every start: they may have changed meanwhile.
	if want := []string{ActComposeUp, ActWaitHealthy, ActSetProviderCredentials}; !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	if e.status != status.Ready || e.watches != 1 {
		t.Fatalf("status %s, %d idle watches started; want ready and 1", e.status, e.watches)
	}
}

func TestProjectStartThatFailsIsStoppedWithTheReason(t *testing.T) {
	e := newLifecycleEnv(t, status.Starting)
	e.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	e.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(nil)
	e.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).
		Return(temporal.NewNonRetryableApplicationError(`The provider "x" is not connected.`, ErrTypeProviderNotConnected, nil))
	e.ExecuteWorkflow(ProjectStart, StepInput{ProjectID: "p1"})
	e.done(t)
	if e.GetWorkflowError() == nil {
		t.Fatal("want the start to fail")
	}
	last := e.transitions[len(e.transitions)-1]
	if e.status != status.Stopped || last.Error != `The workspace did not start: The provider "x" is not connected.` {
		t.Fatalf("status %s, last transition %+v", e.status, last)
	}
	if e.watches != 0 {
		t.Errorf("%d idle watches for a workspace that did not start", e.watches)
	}
}

func TestProjectStartOfAProjectDeletedMeanwhileDoesNothing(t *testing.T) {
	e := newLifecycleEnv(t, "deleting")
	e.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{}, errors.New("must not run")).Never()
	e.ExecuteWorkflow(ProjectStart, StepInput{ProjectID: "p1"})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil || e.status != "deleting" {
		t.Fatalf("err %v, status %s", err, e.status)
	}
}

func idleAnswers(e *lifecycleEnv, answers ...IdleCheck) *int {
	checks := 0
	e.OnActivity(ActIdleCheck, mock.Anything, StepInput{ProjectID: "p1"}).Return(func(ctx context.Context, _ StepInput) (IdleCheck, error) {
		e.queues.record(ctx)
		a := answers[min(checks, len(answers)-1)]
		checks++
		return a, nil
	})
	return &checks
}

func TestWorkspaceIdleStopsAnUnusedWorkspace(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	checks := idleAnswers(e, IdleCheck{Ready: true})
	start := e.Now()
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if len(e.stops) != 1 || e.status != status.Stopped || *checks != 1 {
		t.Fatalf("%d stops, status %s, %d checks", len(e.stops), e.status, *checks)
	}
	// The stop on the project's host; the check locally, this worker serving that host here.
	if got := e.queues.get(ActStopWorkspace); len(got) != 1 || got[0] != testHost.TaskQueue {
		t.Errorf("%s ran on %v, want once on the project's host", ActStopWorkspace, got)
	}
	if got := e.queues.get(ActIdleCheck); len(got) != 1 || got[0] == testHost.TaskQueue {
		t.Errorf("%s ran on %v, want once, locally", ActIdleCheck, got)
	}
	if after := e.stops[0].Sub(start); after != 30*time.Minute {
		t.Errorf("stopped after %s, want 30m", after)
	}
}

func TestWorkspaceIdleIsResetByActivity(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	idleAnswers(e, IdleCheck{Ready: true})
	start := e.Now()
	// A viewer at 20 minutes and a prompt at 40: the deadline moves to 70 minutes.
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(SignalActivity, ActivitySignal{}) }, 20*time.Minute)
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(SignalActivity, ActivitySignal{}) }, 40*time.Minute)
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if len(e.stops) != 1 {
		t.Fatalf("%d stops, want 1", len(e.stops))
	}
	if after := e.stops[0].Sub(start); after != 70*time.Minute {
		t.Errorf("stopped after %s, want 70m (30m after the last activity)", after)
	}
}

func TestWorkspaceIdleSignalCarriesANewIdleTime(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	idleAnswers(e, IdleCheck{Ready: true})
	start := e.Now()
	e.RegisterDelayedCallback(func() { e.SignalWorkflow(SignalActivity, ActivitySignal{Idle: 5 * time.Minute}) }, 10*time.Minute)
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if len(e.stops) != 1 || e.stops[0].Sub(start) != 15*time.Minute {
		t.Fatalf("stops %v after %v, want one 15m after the start", e.stops, start)
	}
}

func TestWorkspaceIdleKeepsABusyAgentRunning(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	checks := idleAnswers(e, IdleCheck{Ready: true, Busy: true}, IdleCheck{Ready: true, Busy: true}, IdleCheck{Ready: true})
	start := e.Now()
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if *checks != 3 || len(e.stops) != 1 {
		t.Fatalf("%d checks, %d stops; want 3 and 1", *checks, len(e.stops))
	}
	if after := e.stops[0].Sub(start); after != 90*time.Minute {
		t.Errorf("stopped after %s, want 90m (busy at 30m and 60m)", after)
	}
}

func TestWorkspaceIdleDoesNotStopOnAFailedCheck(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	checks := 0
	e.OnActivity(ActIdleCheck, mock.Anything, mock.Anything).Return(func(context.Context, StepInput) (IdleCheck, error) {
		checks++
		if checks <= 3 { // one check's three attempts
			return IdleCheck{}, errors.New("opencode: GET /session/status: timeout")
		}
		return IdleCheck{Ready: true}, nil
	})
	start := e.Now()
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if len(e.stops) != 1 || e.stops[0].Sub(start) < 60*time.Minute {
		t.Fatalf("stops %v, want one an idle time after the failed check", e.stops)
	}
}

func TestWorkspaceIdleEndsWhenTheProjectIsNoLongerReady(t *testing.T) {
	e := newLifecycleEnv(t, status.Stopped)
	idleAnswers(e, IdleCheck{Ready: false})
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: time.Minute})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil || len(e.stops) != 0 || len(e.transitions) != 0 {
		t.Fatalf("err %v, stops %v, transitions %v; want an end with nothing done", err, e.stops, e.transitions)
	}
}

// The owner stopped it first: the watch finds the project moved and leaves the stop to them.
func TestWorkspaceIdleLeavesAMovedProjectAlone(t *testing.T) {
	e := newLifecycleEnv(t, status.Stopping)
	idleAnswers(e, IdleCheck{Ready: true}) // read just before the owner's stop moved it
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: time.Minute})
	e.done(t)
	if err := e.GetWorkflowError(); err != nil || len(e.stops) != 0 {
		t.Fatalf("err %v, %d stops; want none", err, len(e.stops))
	}
}

func TestWorkspaceIdleContinuesAsNewWithItsDeadline(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	idleAnswers(e, IdleCheck{Ready: true})
	start := e.Now()
	e.RegisterDelayedCallback(func() {
		for range MaxSignalsPerRun + 3 {
			e.SignalWorkflow(SignalActivity, ActivitySignal{})
		}
	}, 10*time.Minute)
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	var can *workflow.ContinueAsNewError
	if !errors.As(e.GetWorkflowError(), &can) {
		t.Fatalf("workflow error %v, want continue-as-new", e.GetWorkflowError())
	}
	var next IdleInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.ProjectID != "p1" || next.Idle != 30*time.Minute || !next.Deadline.Equal(start.Add(40*time.Minute)) {
		t.Errorf("continues with %+v, want the deadline 30m after the last signal (%s)", next, start.Add(40*time.Minute))
	}
	if len(e.stops) != 0 {
		t.Errorf("%d stops before continuing as new", len(e.stops))
	}
}

func TestWorkspaceIdleCancelledEndsWithoutStopping(t *testing.T) {
	e := newLifecycleEnv(t, status.Ready)
	idleAnswers(e, IdleCheck{Ready: true})
	e.RegisterDelayedCallback(e.CancelWorkflow, 5*time.Minute)
	e.ExecuteWorkflow(WorkspaceIdle, IdleInput{ProjectID: "p1", Idle: 30 * time.Minute})
	e.done(t)
	if !temporal.IsCanceledError(e.GetWorkflowError()) || len(e.stops) != 0 {
		t.Fatalf("err %v, %d stops; want cancelled with none", e.GetWorkflowError(), len(e.stops))
	}
}
