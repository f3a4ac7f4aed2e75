package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"
)

// newEnv registers no-op activities under doce's names so the test env knows their
// signatures; each test overrides them with OnActivity.
func newEnv(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(ProjectSetup, workflow.RegisterOptions{Name: "ProjectSetup"})
	step := func(context.Context, StepInput) error { return nil }
	for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt} {
		env.RegisterActivityWithOptions(step, activity.RegisterOptions{Name: name})
	}
	env.RegisterActivityWithOptions(func(context.Context, StepInput) (ComposeUpResult, error) { return ComposeUpResult{}, nil },
		activity.RegisterOptions{Name: ActComposeUp})
	env.RegisterActivityWithOptions(func(context.Context, StepInput) (SessionResult, error) { return SessionResult{}, nil },
		activity.RegisterOptions{Name: ActSessionCreate})
	env.RegisterActivityWithOptions(func(context.Context, ProgressUpdate) error { return nil },
		activity.RegisterOptions{Name: ActRecordProgress})
	return env
}

func TestProjectSetupRunsStepsInOrder(t *testing.T) {
	env := newEnv(t)
	var order []string
	var records []ProgressUpdate
	in := StepInput{ProjectID: "p1"}
	env.OnActivity(ActComposeUp, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActComposeUp) }).Return(ComposeUpResult{HostPort: 1}, nil)
	for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt} {
		env.OnActivity(name, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, name) }).Return(nil)
	}
	env.OnActivity(ActSessionCreate, mock.Anything, in).Run(func(mock.Arguments) { order = append(order, ActSessionCreate) }).Return(SessionResult{SessionID: "ses_1"}, nil)
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Run(func(args mock.Arguments) { records = append(records, args[1].(ProgressUpdate)) }).Return(nil)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1", RequestedBy: "u1"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: completed=%v err=%v", env.IsWorkflowCompleted(), env.GetWorkflowError())
	}
	want := []string{ActComposeUp, ActWaitHealthy, ActSetProviderCredentials, ActSessionCreate, ActSendInitialPrompt}
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
	if p.State != StateCompleted {
		t.Errorf("state %s, want completed", p.State)
	}
	for _, s := range p.Steps {
		if s.Status != StepDone {
			t.Errorf("step %s is %s", s.Name, s.Status)
		}
	}
}

func TestProjectSetupCredentialsRetriedThreeTimes(t *testing.T) {
	env := newEnv(t)
	attempts := 0
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	env.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).Run(func(mock.Arguments) { attempts++ }).Return(errors.New("opencode: 500"))
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if env.GetWorkflowError() == nil {
		t.Fatal("workflow succeeded, want failure")
	}
	if attempts != 3 {
		t.Errorf("credentials attempted %d times, want 3", attempts)
	}
	v, _ := env.QueryWorkflow(QueryProgress)
	var p Progress
	v.Get(&p)
	if p.State != StateFailed || p.Steps[2].Status != StepFailed || p.Steps[2].Error != "opencode: 500" {
		t.Errorf("progress after failure: %+v", p)
	}
}

func TestProjectSetupNonRetryableStopsAtOnce(t *testing.T) {
	env := newEnv(t)
	attempts := 0
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	env.OnActivity(ActWaitHealthy, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(ActSetProviderCredentials, mock.Anything, mock.Anything).Run(func(mock.Arguments) { attempts++ }).
		Return(temporal.NewNonRetryableApplicationError("The provider \"x\" is not connected.", ErrTypeProviderNotConnected, nil))
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)

	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if attempts != 1 {
		t.Errorf("attempted %d times, want 1", attempts)
	}
	var appErr *temporal.ApplicationError
	if !errors.As(env.GetWorkflowError(), &appErr) || appErr.Type() != ErrTypeProviderNotConnected {
		t.Errorf("workflow error %v, want %s", env.GetWorkflowError(), ErrTypeProviderNotConnected)
	}
}
