package workflows

import (
	"errors"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/doce-dev/doce/status"
)

// setupStep is one step of ProjectSetup with the options it runs under. Retry policies sit next
// to the step they govern.
type setupStep struct {
	name  string
	title string
	// local steps are short idempotent calls run as local activities: no task round trip
	// through the server (~110 ms each here), retried by the worker under the same policy.
	local bool
	// localWhenPrebuilt steps are quick checks on a prebuilt workspace (its container runs, its
	// OpenCode answers): local too in a setup that claimed one, under opts' timeouts and policy.
	localWhenPrebuilt bool
	opts              workflow.ActivityOptions
	lopts             workflow.LocalActivityOptions
}

var setupSteps = []setupStep{
	{
		name: ActComposeUp, title: "Start the workspace container", localWhenPrebuilt: true,
		opts: workflow.ActivityOptions{
			StartToCloseTimeout:    2 * time.Minute,
			HeartbeatTimeout:       10 * time.Second,
			ScheduleToCloseTimeout: 10 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone, ErrTypeProviderNotConnected, ErrTypeImageMissing},
			},
		},
	},
	{
		name: ActWaitHealthy, title: "Wait for OpenCode to answer", localWhenPrebuilt: true,
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
			// Room for a Vault restart inside one attempt (the worker's Vault client waits ~45 s).
			StartToCloseTimeout: 2 * time.Minute,
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
			StartToCloseTimeout:    2 * time.Minute,
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
			StartToCloseTimeout:    2 * time.Minute,
			ScheduleToCloseTimeout: 5 * time.Minute,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
				NonRetryableErrorTypes: []string{ErrTypeProjectGone},
			},
		},
	},
}

// importStep clones a project's repository on doce's side and places it in the workspace; only
// setups of projects made from a repository have it, after the container step.
var importStep = setupStep{
	name: ActImportRepository, title: "Import the repository",
	opts: workflow.ActivityOptions{
		// The clone has its own time limit (DOCE_IMPORT_TIMEOUT); this leaves room for the copy.
		StartToCloseTimeout:    15 * time.Minute,
		HeartbeatTimeout:       30 * time.Second,
		ScheduleToCloseTimeout: 45 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{ErrTypeProjectGone, ErrTypeImportRefused},
		},
	},
}

// stepsFor is the steps of in's setup. Runs recorded before imports have no Repository and so
// the same steps as before.
func stepsFor(in SetupInput) []setupStep {
	if !in.Repository {
		return setupSteps
	}
	return slices.Concat(setupSteps[:1], []setupStep{importStep}, setupSteps[1:])
}

var recordOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 10 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 5 * time.Second},
}

// composeDownOpts governs removing a workspace; Docker being away for a while must not lose it.
var composeDownOpts = workflow.ActivityOptions{
	StartToCloseTimeout:    2 * time.Minute,
	HeartbeatTimeout:       10 * time.Second,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
}

// ProjectSetup brings a project's workspace up and hands it its first prompt: container,
// health, credentials, session, prompt. Each step is idempotent, so a retried or replayed step
// never makes a second container, session or prompt.
//
// A step that has exhausted its retries does not end the run: the setup records why, marks
// itself waiting-for-operator and waits for a retry update (resume at the failed step) or a
// cancel update (tear down), giving up after OperatorWait.
func ProjectSetup(ctx workflow.Context, in SetupInput) error {
	steps := stepsFor(in)
	progress := newProgress(steps)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (Progress, error) { return *progress, nil }); err != nil {
		return err
	}
	wait := in.OperatorWait
	if wait <= 0 {
		wait = DefaultOperatorWait
	}
	retryCh := workflow.GetSignalChannel(ctx, SignalRetry)
	cancelCh := workflow.GetSignalChannel(ctx, SignalCancel)
	op, err := newOperatorGate(ctx)
	if err != nil {
		return err
	}
	// Runs since hosts place the project before its first step and run every step on its
	// host's queue; a failed placement is a failure of the first step, retried with it.
	routes := routed(ctx)
	var host HostQueue

	for i := 0; i < len(steps); {
		st := steps[i]
		progress.start(i, workflow.Now(ctx))
		if err := setState(ctx, status.SetupRunning, st.name); err != nil {
			return err
		}
		if in.Prebuilt && st.localWhenPrebuilt {
			st.local, st.lopts = true, workflow.LocalActivityOptions{
				StartToCloseTimeout: st.opts.StartToCloseTimeout, ScheduleToCloseTimeout: st.opts.ScheduleToCloseTimeout, RetryPolicy: st.opts.RetryPolicy,
			}
		}
		var err error
		if routes && host.TaskQueue == "" {
			host, err = placeProject(ctx, in.ProjectID)
		}
		if err == nil {
			err = runStep(ctx, st, in.ProjectID, host.TaskQueue)
		}
		if err == nil {
			progress.done(i, workflow.Now(ctx))
			i++
			continue
		}
		if temporal.IsCanceledError(err) {
			return err // the run itself was canceled (teardown): nothing more to do here
		}
		reason := failureReason(err)
		progress.fail(i, workflow.Now(ctx), reason)
		workflow.GetLogger(ctx).Error("setup step failed; waiting for an operator", "step", st.name, "error", err)
		op.open(ctx, retryCh, cancelCh)
		if err := setState(ctx, status.SetupWaiting, st.name); err != nil {
			return err
		}
		record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Step: st.name, Status: "failed", Error: reason, Progress: progress.clone()})

		switch op.await(ctx, retryCh, cancelCh, wait) {
		case SignalRetry:
			progress.Runs++
			record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Step: st.name, Status: "setting-up"})
		case SignalCancel:
			return cancelSetup(ctx, progress, in.ProjectID, host.TaskQueue)
		default:
			progress.State = status.SetupGaveUp
			_ = setState(ctx, status.SetupGaveUp, st.name)
			return temporal.NewNonRetryableApplicationError(
				"no operator retried or cancelled within "+wait.String()+"; last failure: "+reason, "OperatorTimeout", err)
		}
	}
	progress.State = status.SetupCompleted
	if err := setState(ctx, status.SetupCompleted, ""); err != nil {
		return err
	}
	record(ctx, ProgressUpdate{ProjectID: in.ProjectID, Status: "ready", Progress: progress.clone()})
	if workflow.GetVersion(ctx, "watch-idle", workflow.DefaultVersion, 1) == 1 {
		watchIdle(ctx, in.ProjectID)
	}
	return nil
}

// operatorGate takes an operator's retry or cancel while the setup waits: as an update (whose
// validator refuses it unless the setup is waiting and nothing was decided yet), or as a signal
// from an older caller.
type operatorGate struct {
	waiting  bool
	decision string
	decided  workflow.Channel // the update handlers hand the decision to await
}

func newOperatorGate(ctx workflow.Context) (*operatorGate, error) {
	g := &operatorGate{decided: workflow.NewBufferedChannel(ctx, 1)}
	for _, name := range []string{UpdateRetry, UpdateCancel} {
		err := workflow.SetUpdateHandlerWithOptions(ctx, name,
			func(ctx workflow.Context) error {
				// Two updates can pass their validators in one workflow task; the first decides.
				if err := g.validate(); err != nil {
					return err
				}
				g.decision = name
				g.decided.SendAsync(name)
				return nil
			},
			workflow.UpdateHandlerOptions{Validator: g.validate})
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *operatorGate) validate() error {
	if !g.waiting || g.decision != "" {
		return temporal.NewApplicationError("the setup is not waiting for an operator", ErrTypeNotWaiting)
	}
	return nil
}

// open starts a wait. Runs started since the updates drop signals sent while they were not
// waiting: such a signal is a retry that lost a race, not a request to retry this failure.
func (g *operatorGate) open(ctx workflow.Context, retryCh, cancelCh workflow.ReceiveChannel) {
	if workflow.GetVersion(ctx, "operator-updates", workflow.DefaultVersion, 1) >= 1 {
		for retryCh.ReceiveAsync(nil) {
		}
		for cancelCh.ReceiveAsync(nil) {
		}
	}
	g.waiting, g.decision = true, ""
}

// await blocks until a retry or cancel arrives (by update or signal), or wait passes ("").
func (g *operatorGate) await(ctx workflow.Context, retryCh, cancelCh workflow.ReceiveChannel, wait time.Duration) string {
	defer func() { g.waiting = false }()
	timerCtx, stopTimer := workflow.WithCancel(ctx)
	defer stopTimer()
	got := ""
	workflow.NewSelector(ctx).
		AddReceive(g.decided, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &got) }).
		AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); got = SignalRetry }).
		AddReceive(cancelCh, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); got = SignalCancel }).
		AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {}).
		Select(ctx)
	if got == "" {
		g.decided.ReceiveAsync(&got) // an update taken as the timer fired still counts
	}
	g.decision = got
	return got
}

// cancelSetup removes the workspace (on the project's host: queue) and marks the project
// cancelled.
func cancelSetup(ctx workflow.Context, progress *Progress, projectID, queue string) error {
	progress.State = status.SetupCancelled
	err := workflow.ExecuteActivity(onQueue(ctx, composeDownOpts, queue), ActComposeDown, StepInput{ProjectID: projectID}).Get(ctx, nil)
	if err != nil {
		return err
	}
	if err := setState(ctx, status.SetupCancelled, ""); err != nil {
		return err
	}
	record(ctx, ProgressUpdate{ProjectID: projectID, Status: "cancelled", Progress: progress.clone()})
	return nil
}

// setState keeps the run's search attributes current, so the Temporal UI and `temporal
// workflow list --query` find setups by state and step.
func setState(ctx workflow.Context, state status.Setup, step string) error {
	return workflow.UpsertTypedSearchAttributes(ctx, SASetupState.ValueSet(string(state)), SASetupStep.ValueSet(step))
}

// runStep runs one step for the project on its host (queue; empty: the workflow's own queue,
// as runs recorded before hosts did): a short step locally when this worker serves the host
// (localOnHost), the others on the host's queue.
func runStep(ctx workflow.Context, st setupStep, projectID, queue string) error {
	in := StepInput{ProjectID: projectID}
	if st.local {
		opts := st.lopts
		opts.Summary = st.title // what the Temporal UI's timeline shows
		return localOnHost(ctx, st.name, opts, queue, in, nil)
	}
	opts := st.opts
	opts.Summary = st.title
	return workflow.ExecuteActivity(onQueue(ctx, opts, queue), st.name, in).Get(ctx, nil)
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

// clone is a copy of p for an activity's input.
func (p *Progress) clone() *Progress {
	c := *p
	c.Steps = append([]StepProgress(nil), p.Steps...)
	return &c
}

// CompletedProgress is the step table of a setup that finished before its table was recorded.
func CompletedProgress() *Progress {
	p := newProgress(setupSteps)
	p.State = status.SetupCompleted
	for i := range p.Steps {
		p.Steps[i].Status = StepDone
	}
	return p
}

func newProgress(steps []setupStep) *Progress {
	p := &Progress{State: status.SetupRunning, Runs: 1}
	for _, st := range steps {
		p.Steps = append(p.Steps, StepProgress{Name: st.name, Title: st.title, Status: StepPending})
	}
	return p
}

func (p *Progress) start(i int, now time.Time) {
	p.State = status.SetupRunning
	p.Steps[i].Status, p.Steps[i].StartedAt, p.Steps[i].FinishedAt, p.Steps[i].Error = StepRunning, &now, nil, ""
}

func (p *Progress) done(i int, now time.Time) {
	p.Steps[i].Status, p.Steps[i].FinishedAt = StepDone, &now
}

func (p *Progress) fail(i int, now time.Time, reason string) {
	p.Steps[i].Status, p.Steps[i].FinishedAt, p.Steps[i].Error = StepFailed, &now, reason
	p.State = status.SetupWaiting
}
