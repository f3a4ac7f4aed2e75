package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// EnsureRunningWorkflowID is the one workflow id a project's ensure-running runs under, so
// many page views at once start one.
func EnsureRunningWorkflowID(projectID string) string { return "project-ensure-running:" + projectID }

// ContainerState is whether a project's workspace container runs.
type ContainerState struct {
	Exists  bool
	Running bool
}

// ProjectEnsureRunning starts a ready project's workspace again when its container stopped
// (a host reboot, an operator's docker stop) and hands OpenCode the current credentials, which
// may have changed while it was down. A running workspace is left alone.
func ProjectEnsureRunning(ctx workflow.Context, in StepInput) error {
	var state ContainerState
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteLocalActivity(lctx, ActContainerState, in).Get(ctx, &state); err != nil {
		return err
	}
	if state.Running {
		return nil
	}
	for _, st := range setupSteps[:3] { // composeUp, waitHealthy, setProviderCredentials
		if err := runStep(ctx, st, in.ProjectID); err != nil {
			return err
		}
	}
	return nil
}
