package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/doce-dev/doce/status"
)

// A ready project's workspace can be stopped and started again, by its owner or, when nobody
// uses it, by WorkspaceIdle. The project row's status says where it is; every move is a
// guarded transition (project.transition), so a stop, a start and a delete that race never
// undo each other: the web tier makes the first move (ready → stopping, stopped → starting) and
// answers 409 when it cannot, the workflow makes the rest.

// StopWorkflowID, StartWorkflowID and IdleWorkflowID are the one workflow id each run of a
// project's stop, start and idle watch has, so concurrent requests make one run.
func StopWorkflowID(projectID string) string  { return "project-stop:" + projectID }
func StartWorkflowID(projectID string) string { return "project-start:" + projectID }
func IdleWorkflowID(projectID string) string  { return "workspace-idle:" + projectID }

// DefaultWorkspaceIdle is how long a workspace nobody uses keeps running (DOCE_WORKSPACE_IDLE).
const DefaultWorkspaceIdle = 30 * time.Minute

// SignalActivity tells a project's WorkspaceIdle that someone uses the workspace.
const SignalActivity = "activity"

// ActivitySignal is SignalActivity's payload. Idle, when set, replaces the run's idle time, so
// a changed DOCE_WORKSPACE_IDLE reaches watches already running.
type ActivitySignal struct {
	Idle time.Duration `json:",omitempty"`
}

// IdleInput starts (or continues) a project's WorkspaceIdle.
type IdleInput struct {
	ProjectID string
	Idle      time.Duration
	// Deadline carries the run's deadline across continue-as-new; zero: Idle from now.
	Deadline time.Time `json:",omitempty"`
}

// IdleCheck is what the idle watch learns when its deadline passes.
type IdleCheck struct {
	Ready bool // the project is ready: its workspace is meant to run
	Busy  bool // its agent is working on a session
}

// TransitionInput moves a project to To if its status is one of From, setting its setup error.
type TransitionInput struct {
	ProjectID string
	From      []status.Project
	To        status.Project
	Error     string `json:",omitempty"`
}

// Activity types of the life cycle.
const (
	ActTransition    = "project.transition"
	ActStopWorkspace = "docker.stop"
	ActIdleCheck     = "workspace.idleCheck"
	ActWatchIdle     = "workspace.watchIdle"
)

// startSteps are the setup steps that bring an existing project's workspace up again: the
// container, OpenCode's health, the credentials (which may have changed while it was down).
var startSteps = []string{ActComposeUp, ActWaitHealthy, ActSetProviderCredentials}

// stepNamed is the setup step called name.
func stepNamed(name string) setupStep {
	for _, st := range setupSteps {
		if st.name == name {
			return st
		}
	}
	panic("workflows: no setup step " + name) // a programming error, caught by every test
}

var stopOpts = workflow.ActivityOptions{
	StartToCloseTimeout:    2 * time.Minute,
	HeartbeatTimeout:       10 * time.Second,
	ScheduleToCloseTimeout: time.Hour,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
	Summary:                "Stop the workspace container",
}

var idleCheckOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	// Room for all three attempts: a workspace's OpenCode answers slowly on a busy host.
	ScheduleToCloseTimeout: 2 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
}

var watchIdleOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
}

// ProjectStop stops a project its owner moved to stopping: the container stops, its volumes
// (the project's files, OpenCode's sessions and auth.json) stay.
func ProjectStop(ctx workflow.Context, in StepInput) error {
	// The idle watch has nothing left to watch. It may be stopping the workspace itself right
	// now; both stops are the same idempotent steps.
	if err := workflow.RequestCancelExternalWorkflow(ctx, IdleWorkflowID(in.ProjectID), "").Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Debug("no idle watch to cancel", "error", err)
	}
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	return stopWorkspace(ctx, in.ProjectID, queue)
}

// stopWorkspace stops the container of a project in stopping (on its host: queue) and marks it
// stopped.
func stopWorkspace(ctx workflow.Context, projectID, queue string) error {
	if err := workflow.ExecuteActivity(onQueue(ctx, stopOpts, queue), ActStopWorkspace, StepInput{ProjectID: projectID}).Get(ctx, nil); err != nil {
		return err
	}
	_, err := transition(ctx, TransitionInput{ProjectID: projectID, From: []status.Project{status.Stopping}, To: status.Stopped})
	return err
}

// ProjectStart brings a project its owner moved to starting up again, as ProjectEnsureRunning
// does (the container, OpenCode's health, the credentials handed over again), marks it ready
// and starts its idle watch. A step that fails for good puts it back to stopped with the
// reason, so its owner sees why and can start it again.
func ProjectStart(ctx workflow.Context, in StepInput) error {
	// Still starting? A delete meanwhile must not see its workspace made again.
	if ok, err := transition(ctx, TransitionInput{ProjectID: in.ProjectID, From: []status.Project{status.Starting}, To: status.Starting}); err != nil || !ok {
		return err
	}
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	for _, name := range startSteps {
		err := runStep(ctx, stepNamed(name), in.ProjectID, queue)
		if err == nil {
			continue
		}
		if temporal.IsCanceledError(err) {
			return err // a teardown cancelled the start
		}
		if _, terr := transition(ctx, TransitionInput{ProjectID: in.ProjectID, From: []status.Project{status.Starting}, To: status.Stopped,
			Error: "The workspace did not start: " + failureReason(err)}); terr != nil {
			return terr
		}
		return err
	}
	ok, err := transition(ctx, TransitionInput{ProjectID: in.ProjectID, From: []status.Project{status.Starting}, To: status.Ready})
	if err != nil || !ok {
		return err
	}
	watchIdle(ctx, in.ProjectID)
	return nil
}

// maxSignalsPerRun bounds a WorkspaceIdle run's history (about six events per signal) before it
// continues as new.
const maxSignalsPerRun = 500

// WorkspaceIdle stops a ready project's workspace once nobody has used it for in.Idle: no
// viewer, no prompt (both arrive as SignalActivity) and no busy agent (asked when the deadline
// passes). The wait is a Temporal timer, so restarting the worker or Temporal loses nothing.
// It ends when the workspace stops, the project is no longer ready, or it is cancelled.
func WorkspaceIdle(ctx workflow.Context, in IdleInput) error {
	if in.Idle <= 0 {
		in.Idle = DefaultWorkspaceIdle
	}
	signals := workflow.GetSignalChannel(ctx, SignalActivity)
	deadline := in.Deadline
	if deadline.IsZero() {
		deadline = workflow.Now(ctx).Add(in.Idle)
	}
	received := 0
	used := func(sig ActivitySignal) {
		if sig.Idle > 0 {
			in.Idle = sig.Idle
		}
		deadline = workflow.Now(ctx).Add(in.Idle)
		received++
	}
	// drain takes the signals already delivered, without waiting; it reports whether there were any.
	drain := func() bool {
		got := false
		for {
			var sig ActivitySignal
			if !signals.ReceiveAsync(&sig) {
				return got
			}
			used(sig)
			got = true
		}
	}
	log := workflow.GetLogger(ctx)
	// The project's host's queue, looked up when the deadline first passes (runs that route).
	queue, looked := "", false
	for {
		if received >= maxSignalsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			drain() // a signal not taken now would be lost with this run
			in.Deadline = deadline
			return workflow.NewContinueAsNewError(ctx, WorkspaceIdle, in)
		}
		if wait := deadline.Sub(workflow.Now(ctx)); wait > 0 {
			timerCtx, cancelTimer := workflow.WithCancel(ctx)
			workflow.NewSelector(ctx).
				AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
					var sig ActivitySignal
					c.Receive(ctx, &sig)
					used(sig)
				}).
				AddFuture(workflow.NewTimer(timerCtx, wait), func(workflow.Future) {}).
				Select(ctx)
			cancelTimer()
			if err := ctx.Err(); err != nil {
				return err // cancelled: its owner stopped it, or the project is being deleted
			}
			continue // the deadline may have moved; the loop looks again
		}

		if !looked {
			q, err := projectQueue(ctx, in.ProjectID)
			if err != nil {
				return err
			}
			queue, looked = q, true
		}
		var check IdleCheck
		err := idleCheck(ctx, in.ProjectID, queue, &check)
		switch {
		case temporal.IsCanceledError(err):
			return err
		case err != nil:
			// Never stop a workspace on a guess: look again one idle time later.
			log.Warn("unable to tell whether the workspace is idle", "error", err)
			deadline = workflow.Now(ctx).Add(in.Idle)
			continue
		case !check.Ready:
			return nil // stopped, starting, being deleted: nothing to watch
		case check.Busy:
			deadline = workflow.Now(ctx).Add(in.Idle) // the agent working is use
			continue
		}
		if drain() {
			continue // someone came while we asked
		}
		ok, err := transition(ctx, TransitionInput{ProjectID: in.ProjectID, From: []status.Project{status.Ready}, To: status.Stopping})
		if err != nil || !ok {
			return err // moved meanwhile (stopped by its owner, deleted): theirs to finish
		}
		log.Info("stopping idle workspace", "project", in.ProjectID, "idle", in.Idle)
		return stopWorkspace(ctx, in.ProjectID, queue)
	}
}

// idleCheck asks whether the project is ready and its agent busy, on its host (queue).
func idleCheck(ctx workflow.Context, projectID, queue string, check *IdleCheck) error {
	opts := idleCheckOpts
	opts.Summary = "Ask whether the workspace is in use"
	return localOnHost(ctx, ActIdleCheck, opts, queue, StepInput{ProjectID: projectID}, check)
}

// transition moves a project (project.transition) and reports whether it moved.
func transition(ctx workflow.Context, in TransitionInput) (bool, error) {
	var moved bool
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, recordOpts), ActTransition, in).Get(ctx, &moved)
	return moved, err
}

// watchIdle starts the project's idle watch, or resets the one running. A failure is logged,
// not fatal: the next page view starts it too.
func watchIdle(ctx workflow.Context, projectID string) {
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, watchIdleOpts), ActWatchIdle, StepInput{ProjectID: projectID}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Warn("unable to start the idle watch", "project", projectID, "error", err)
	}
}
