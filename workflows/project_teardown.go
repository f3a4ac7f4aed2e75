package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ProjectTeardown removes everything a project owns: it stops the project's setup, start, stop
// and idle watch if they run, removes its containers, volumes and network (on the project's
// host), then marks the row deleted. Every step is idempotent, so it can be re-run until it
// completes.
func ProjectTeardown(ctx workflow.Context, in TeardownInput) error {
	// A setup that already ended (or never started) cannot be cancelled; that is fine.
	if err := workflow.RequestCancelExternalWorkflow(ctx, SetupWorkflowID(in.ProjectID), "").Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("setup not cancelled; it is not running", "error", err)
	}
	if workflow.GetVersion(ctx, "cancel-lifecycle", workflow.DefaultVersion, 1) == 1 {
		// A start would make the workspace again, a watch would stop it: end whatever runs.
		var cancels []workflow.Future
		for _, id := range []string{StartWorkflowID(in.ProjectID), StopWorkflowID(in.ProjectID), IdleWorkflowID(in.ProjectID), EnsureRunningWorkflowID(in.ProjectID)} {
			cancels = append(cancels, workflow.RequestCancelExternalWorkflow(ctx, id, ""))
		}
		for _, f := range cancels {
			_ = f.Get(ctx, nil) // not running is fine
		}
	}
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	if err := workflow.ExecuteActivity(onQueue(ctx, composeDownOpts, queue), ActComposeDown, StepInput{ProjectID: in.ProjectID}).Get(ctx, nil); err != nil {
		return err
	}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumInterval: 10 * time.Second},
	})
	return workflow.ExecuteLocalActivity(lctx, ActMarkDeleted, StepInput{ProjectID: in.ProjectID}).Get(ctx, nil)
}
