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

var containerStateOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 30 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
}

// ProjectEnsureRunning starts a ready project's workspace again when its container stopped
// (a host reboot, an operator's docker stop) and hands OpenCode the current credentials, which
// may have changed while it was down. A running workspace is left alone.
func ProjectEnsureRunning(ctx workflow.Context, in StepInput) error {
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	var state ContainerState
	if err := localOnHost(ctx, ActContainerState, containerStateOpts, queue, in, &state); err != nil {
		return err
	}
	// A project stopped (or being stopped) meanwhile stays stopped.
	if state.Running || (state.Status != "" && state.Status != status.Ready) {
		return nil
	}
	for _, name := range startSteps {
		if err := runStep(ctx, stepNamed(name), in.ProjectID, queue); err != nil {
			return err
		}
	}
	return nil
}
