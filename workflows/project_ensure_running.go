package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/doce-dev/doce/status"
)

// EnsureRunningWorkflowID is the one workflow id a project's ensure-running runs under, so
// many page views at once start one.
func EnsureRunningWorkflowID(projectID string) string { return "project-ensure-running:" + projectID }

// ContainerState is whether a project's workspace container runs, and the project's status.
type ContainerState struct {
	Exists  bool
	Running bool
	Status  status.Project `json:",omitempty"` // empty in runs recorded before it was reported
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
	// A project stopped (or being stopped) meanwhile stays stopped.
	if state.Running || (state.Status != "" && state.Status != status.Ready) {
		return nil
	}
	for _, name := range startSteps {
		if err := runStep(ctx, stepNamed(name), in.ProjectID); err != nil {
			return err
		}
	}
	return nil
}
