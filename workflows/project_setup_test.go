package workflows_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/doce-dev/doce/status"
	. "github.com/doce-dev/doce/workflows"
)

func TestProjectSetupRunsStepsInOrder(t *testing.T) {
	env := newTestEnv(t)
	var order []string
	var records []ProgressUpdate
	in := StepInput{ProjectID: "p1"}
	env.OnActivity(ActComposeUp, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActComposeUp) }).Return(ComposeUpResult{HostPort: 1}, nil)
	for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt} {
		env.OnActivity(name, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, name) }).Return(nil)
	}
	env.OnActivity(ActSessionCreate, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActSessionCreate) }).Return(SessionResult{SessionID: "ses_1"}, nil)
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Run(func(args mock.Arguments) { records = append(records, args[1].(ProgressUpdate)) }).Return(nil)
	env.OnActivity(ActWatchIdle, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActWatchIdle) }).Return(nil)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1", RequestedBy: "u1"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	// A ready workspace gets its idle watch.
	want := []string{ActComposeUp, ActWaitHealthy, ActSetProviderCredentials, ActSessionCreate, ActSendInitialPrompt, ActWatchIdle}
	if len(order) != len(want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("ran %v, want %v", order, want)
		}
	}
	if last := records[len(records)-1]; last.Status != "ready" {
		t.Errorf("last recorded status %q, want ready", last.Status)
	}
	v, err := env.QueryWorkflow(QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	if p.State != status.SetupCompleted {
		t.Errorf("state %s, want completed", p.State)
	}
	for _, s := range p.Steps {
		if s.Status != StepDone {
			t.Errorf("step %s is %s", s.Name, s.Status)
		}
	}
}

// On a prebuilt workspace every step runs as a local activity (no task round trip through the
// server); a cold setup starts the container and waits for OpenCode as regular activities.
func TestProjectSetupOnAPrebuiltWorkspaceRunsLocally(t *testing.T) {
	for _, prebuilt := range []bool{false, true} {
		env := newTestEnv(t)
		in := StepInput{ProjectID: "p1"}
		env.OnActivity(ActComposeUp, mock.Anything, in).Return(ComposeUpResult{HostPort: 1}, nil)
		for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt, ActWatchIdle} {
			env.OnActivity(name, mock.Anything, in).Return(nil)
		}
		env.OnActivity(ActSessionCreate, mock.Anything, in).Return(SessionResult{SessionID: "ses_1"}, nil)
		env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)
		var remote []string
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			remote = append(remote, info.ActivityType.Name)
		})
		env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1", RequestedBy: "u1", Prebuilt: prebuilt})
		if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
			t.Fatalf("prebuilt=%v: completed=%v err=%v", prebuilt, env.IsWorkflowCompleted(), env.GetWorkflowError())
		}
		want := []string{ActComposeUp, ActWaitHealthy}
		if prebuilt {
			want = nil
		}
		if !slices.Equal(remote, want) {
			t.Errorf("prebuilt=%v: regular activities %v, want %v", prebuilt, remote, want)
		}
	}
}

// A project made from a repository imports it right after its container starts; an import
// git refuses is not retried: the setup waits for a person at that step, saying why.
func TestProjectSetupImportsItsRepository(t *testing.T) {
	for _, refused := range []bool{false, true} {
		env := newTestEnv(t)
		var order []string
		in := StepInput{ProjectID: "p1"}
		env.OnActivity(ActComposeUp, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActComposeUp) }).Return(ComposeUpResult{HostPort: 1}, nil)
		imports := 0
		env.OnActivity(ActImportRepository, mock.Anything, in).Return(func(context.Context, StepInput) error {
			imports++
			order = append(order, ActImportRepository)
			if refused {
				return temporal.NewNonRetryableApplicationError(`The repository has no branch or tag "nope".`, ErrTypeImportRefused, nil)
			}
			return nil
		})
		for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt, ActWatchIdle} {
			env.OnActivity(name, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, name) }).Return(nil)
		}
		env.OnActivity(ActSessionCreate, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActSessionCreate) }).Return(SessionResult{SessionID: "ses_1"}, nil)
		env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)
		if refused {
			env.RegisterDelayedCallback(func() {
				p := queryProgress(t, env)
				if p.State != status.SetupWaiting || p.Steps[1].Name != ActImportRepository || p.Steps[1].Status != StepFailed ||
					p.Steps[1].Error != `The repository has no branch or tag "nope".` {
					t.Errorf("progress while waiting: %+v", p)
				}
				env.UpdateWorkflowNoRejection(UpdateCancel, "cancel-1", t)
			}, time.Hour)
			env.OnActivity(ActComposeDown, mock.Anything, mock.Anything).Return(nil)
			env.OnActivity(ActTransition, mock.Anything, mock.Anything).Return(nil)
		}
		env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1", Repository: true})
		if !env.IsWorkflowCompleted() {
			t.Fatalf("refused=%v: not completed", refused)
		}
		want := []string{ActComposeUp, ActImportRepository, ActWaitHealthy, ActSetProviderCredentials, ActSessionCreate, ActSendInitialPrompt, ActWatchIdle}
		if refused {
			want = want[:2]
		}
		if !slices.Equal(order, want) || imports != 1 {
			t.Errorf("refused=%v: ran %v (%d imports), want %v", refused, order, imports, want)
		}
		if p := queryProgress(t, env); len(p.Steps) != 6 || p.Steps[1].Title != "Import the repository" {
			t.Errorf("refused=%v: steps %+v", refused, p.Steps)
		}
	}
}

func queryProgress(t *testing.T, env *testsuite.TestWorkflowEnvironment) Progress {
	t.Helper()
	v, err := env.QueryWorkflow(QueryProgress)
	if err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// A step that keeps failing is tried 3 times, then the setup waits; retry resumes at that step.
func TestProjectSetupWaitsForOperatorThenResumes(t *testing.T) {
	env := newTestEnv(t)
	composeUps, attempts, fixed := 0, 0, false
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Run(func(mock.Arguments) { composeUps++ }).Return(ComposeUpResult{HostPort: 1}, nil)
	env.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).Return(func(context.Context, StepInput) error {
		attempts++
		if fixed {
			return nil
		}
		return errors.New("opencode: 500")
	})
	env.OnActivity(ActSessionCreate, mock.Anything, mock.Anything).Return(SessionResult{SessionID: "ses_1"}, nil)
	env.OnActivity(ActSendInitialPrompt, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActWatchIdle, mock.Anything, mock.Anything).Return(nil)
	var records []ProgressUpdate
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Run(func(args mock.Arguments) { records = append(records, args[1].(ProgressUpdate)) }).Return(nil)

	env.RegisterDelayedCallback(func() {
		if attempts != 3 {
			t.Errorf("credentials attempted %d times before waiting, want 3", attempts)
		}
		p := queryProgress(t, env)
		if p.State != status.SetupWaiting || p.Steps[2].Status != StepFailed || p.Steps[2].Error != "opencode: 500" {
			t.Errorf("progress while waiting: %+v", p)
		}
		if last := records[len(records)-1]; last.Status != "failed" || last.Step != ActSetProviderCredentials || last.Error != "opencode: 500" {
			t.Errorf("recorded %+v, want the failure", last)
		}
		fixed = true
		env.UpdateWorkflowNoRejection(UpdateRetry, "retry-1", t)
	}, time.Hour)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if composeUps != 1 {
		t.Errorf("composeUp ran %d times, want 1 (retry resumes at the failed step)", composeUps)
	}
	p := queryProgress(t, env)
	if p.State != status.SetupCompleted || p.Runs != 2 {
		t.Errorf("final progress: state %s runs %d", p.State, p.Runs)
	}
}

// A final error waits too; cancel tears the workspace down. (The cancel here is a signal, as an
// older doce sends it during an upgrade: a waiting run still takes it.)
func TestProjectSetupCancelWhileWaiting(t *testing.T) {
	env := newTestEnv(t)
	attempts, downs := 0, 0
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	env.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).Run(func(mock.Arguments) { attempts++ }).
		Return(temporal.NewNonRetryableApplicationError("The provider \"x\" is not connected.", ErrTypeProviderNotConnected, nil))
	env.OnActivity(ActComposeDown, mock.Anything, mock.Anything).Run(func(mock.Arguments) { downs++ }).Return(nil)
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		if p := queryProgress(t, env); p.Steps[2].Error != `The provider "x" is not connected.` {
			t.Errorf("reason shown: %q", p.Steps[2].Error)
		}
		env.SignalWorkflow(SignalCancel, nil)
	}, time.Minute)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	if attempts != 1 || downs != 1 {
		t.Errorf("attempts %d (want 1), composeDown %d (want 1)", attempts, downs)
	}
	if p := queryProgress(t, env); p.State != status.SetupCancelled {
		t.Errorf("state %s, want cancelled", p.State)
	}
}

// Nobody answers: the setup gives up after OperatorWait.
func TestProjectSetupGivesUpAfterOperatorWait(t *testing.T) {
	env := newTestEnv(t)
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{}, temporal.NewNonRetryableApplicationError("image missing", ErrTypeImageMissing, nil))
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)
	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1", OperatorWait: time.Hour})
	var appErr *temporal.ApplicationError
	if !errors.As(env.GetWorkflowError(), &appErr) || appErr.Type() != "OperatorTimeout" {
		t.Fatalf("workflow error %v, want OperatorTimeout", env.GetWorkflowError())
	}
	if p := queryProgress(t, env); p.State != status.SetupGaveUp {
		t.Errorf("state %s, want failed", p.State)
	}
}

// outcome records how an update ended.
type outcome struct {
	accepted bool
	err      error
}

func update(env *testsuite.TestWorkflowEnvironment, name, id string, into *outcome) {
	env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
		OnAccept:   func() { into.accepted = true },
		OnReject:   func(err error) { into.err = err },
		OnComplete: func(_ any, err error) { into.err = err },
	})
}

// Retry and cancel are updates refused unless the setup waits: one sent while a step runs is
// refused at once (and does not retry the failure that follows), of two sent while it waits
// only the first is taken, and a signal sent while it was not waiting is dropped.
func TestProjectSetupUpdatesRefusedUnlessWaiting(t *testing.T) {
	env := newTestEnv(t)
	attempts := 0
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	env.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(func(context.Context, StepInput) error {
		attempts++
		if attempts <= 3 { // fails, waits; once retried, passes
			return errors.New("opencode: not healthy")
		}
		return nil
	})
	env.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActSessionCreate, mock.Anything, mock.Anything).Return(SessionResult{SessionID: "ses_1"}, nil)
	env.OnActivity(ActSendInitialPrompt, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActWatchIdle, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)

	var early, first, second outcome
	env.RegisterDelayedCallback(func() {
		// composeUp has run, waitHealthy is failing: not waiting yet.
		update(env, UpdateRetry, "early", &early)
		env.SignalWorkflow(SignalRetry, nil) // an old caller's retry that lost the race
	}, 0)
	env.RegisterDelayedCallback(func() {
		if p := queryProgress(t, env); p.State != status.SetupWaiting {
			t.Errorf("state %s, want waiting", p.State)
		}
		update(env, UpdateRetry, "first", &first)
		update(env, UpdateCancel, "second", &second)
	}, time.Hour)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("workflow: %v", err)
	}
	var appErr *temporal.ApplicationError
	if early.accepted || !errors.As(early.err, &appErr) || appErr.Type() != ErrTypeNotWaiting {
		t.Errorf("retry while running: accepted=%v err=%v, want refused NotWaiting", early.accepted, early.err)
	}
	if !first.accepted || first.err != nil {
		t.Errorf("first retry while waiting: accepted=%v err=%v", first.accepted, first.err)
	}
	if second.err == nil || !errors.As(second.err, &appErr) || appErr.Type() != ErrTypeNotWaiting {
		t.Errorf("second update while waiting: accepted=%v err=%v, want refused", second.accepted, second.err)
	}
	p := queryProgress(t, env)
	if p.State != status.SetupCompleted || p.Runs != 2 || attempts != 4 {
		t.Errorf("final: state %s runs %d health attempts %d; want completed after one operator retry (the stale signal dropped)", p.State, p.Runs, attempts)
	}
}
