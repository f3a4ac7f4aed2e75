package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// setupStep is one step of ProjectSetup with the options it runs under. Retry policies sit next
// to the step they govern.
type setupStep struct {
	name  string
	title string
	// local steps are short idempotent calls run as local activities: no task round trip
	// through the server (~110 ms each here), retried by the worker under the same policy.
	local bool
	opts  workflow.ActivityOptions
	lopts workflow.LocalActivityOptions
}

var setupSteps = []setupStep{
	{
		name: ActComposeUp, title: "Start the workspace container",
		opts: workflow.ActivityOptions{
			StartToCloseTimeout:    2 * time.Minute,
			ScheduleToCloseTimeout: 10 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone, ErrTypeProviderNotConnected, ErrTypeImageMissing},
			},
		},
	},
	{
		name: ActWaitHealthy, title: "Wait for OpenCode to answer",
		opts: workflow.ActivityOptions{
			// OpenCode answers in 3–6 s alone, ~30 s with ten starting at once on two cores.
			StartToCloseTimeout:    3 * time.Minute,
			HeartbeatTimeout:       15 * time.Second,
			ScheduleToCloseTimeout: 10 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				MaximumAttempts: 3, NonRetryableErrorTypes: []string{ErrTypeProjectGone},
			},
		},
	},
	{
		name: ActSetProviderCredentials, title: "Hand OpenCode the provider credentials", local: true,
		lopts: workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			// The seed's policy: 3 attempts, 1 s then 2 s apart (4 s is the cap).
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 4 * time.Second, MaximumAttempts: 3,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone, ErrTypeProviderNotConnected, ErrTypeCredentialsRejected},
			},
		},
	},
	{
		name: ActSessionCreate, title: "Open a session", local: true,
		lopts: workflow.LocalActivityOptions{
			StartToCloseTimeout:    30 * time.Second,
			ScheduleToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone},
			},
		},
	},
	{
		name: ActSendInitialPrompt, title: "Send the first prompt", local: true,
		lopts: workflow.LocalActivityOptions{
			StartToCloseTimeout:    30 * time.Second,
			ScheduleToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone},
			},
		},
	},
}

var recordOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 5 * time.Second},
}

// ProjectSetup brings a project's workspace up and hands it its first prompt: container,
// health, credentials, session, prompt. Each step is idempotent, so a retried or replayed step
// never makes a second container, session or prompt.
func ProjectSetup(ctx workflow.Context, in SetupInput) error {
	progress := newProgress()
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *progress, nil }); err != nil {
		return err
	}
	logger := workflow.GetLogger(ctx)

	for i, st := range setupSteps {
		progress.start(i, workflow.Now(ctx))
		if err := workflow.UpsertTypedSearchAttributes(ctx, SASetupStep.ValueSet(st.name)); err != nil {
			return err
		}
		record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Step: st.name, Status: "setting-up"})

		err := runStep(ctx, st, in.ProjectID)
		if err != nil {
			reason := failureReason(err)
			progress.fail(i, workflow.Now(ctx), reason)
			logger.Error("setup step failed", "step", st.name, "error", err)
			_ = workflow.UpsertTypedSearchAttributes(ctx, SASetupState.ValueSet(StateFailed))
			record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Step: st.name, Status: "failed", Error: reason})
			return err
		}
		progress.done(i, workflow.Now(ctx))
	}
	progress.State = StateCompleted
	if err := workflow.UpsertTypedSearchAttributes(ctx, SASetupState.ValueSet(StateCompleted)); err != nil {
		return err
	}
	record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Status: "ready"})
	return nil
}

func runStep(ctx workflow.Context, st setupStep, projectID string) error {
	in := StepInput{ProjectID: projectID}
	if st.local {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, st.lopts), st.name, in).Get(ctx, nil)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, st.opts), st.name, in).Get(ctx, nil)
}

// record writes progress to the project row. A failure to record is logged, not fatal: the
// workflow's own progress query stays the truth.
func record(ctx workflow.Context, u ProgressUpdate) {
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, recordOpts), ActRecordProgress, u).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("unable to record progress", "error", err)
	}
}

// failureReason turns an activity failure into the sentence shown to the user: the innermost
// application error's message, without Temporal's wrapping.
func failureReason(err error) string {
	var actErr *temporal.ActivityError
	if errors.As(err, &actErr) && actErr.Unwrap() != nil {
		err = actErr.Unwrap()
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out (" + timeoutErr.TimeoutType().String() + ")"
	}
	return err.Error()
}

func newProgress() *Progress {
	p := &Progress{State: StateRunning}
	for _, st := range setupSteps {
		p.Steps = append(p.Steps, StepProgress{Name: st.name, Title: st.title, Status: StepPending})
	}
	return p
}

func (p *Progress) start(i int, now time.Time) {
	p.Steps[i].Status, p.Steps[i].StartedAt, p.Steps[i].Error = StepRunning, &now, ""
}

func (p *Progress) done(i int, now time.Time) {
	p.Steps[i].Status, p.Steps[i].FinishedAt = StepDone, &now
}

func (p *Progress) fail(i int, now time.Time, reason string) {
	p.Steps[i].Status, p.Steps[i].FinishedAt, p.Steps[i].Error = StepFailed, &now, reason
	p.State = StateFailed
}
