package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ProviderDisconnect takes a provider away from a user everywhere: the connection stops being
// usable at once (status revoked), every project set up with it has the credential removed
// from its OpenCode (DELETE /auth), and only then is the connection row deleted. An OAuth
// connection's refresher is cancelled first. A worker restart resumes where it was.
func ProviderDisconnect(ctx workflow.Context, in DisconnectInput) error {
	lctx := withConnectionReads(ctx)
	if err := workflow.ExecuteLocalActivity(lctx, ActMarkRevoked, in).Get(ctx, nil); err != nil {
		return err
	}
	// Runs started before OAuth connections existed go on without this step.
	if workflow.GetVersion(ctx, "cancel-oauth-refresh", workflow.DefaultVersion, 1) == 1 {
		// Stop the refresher first, so it pushes no token to a project being cleaned. Most
		// connections have none: "not found" is the usual answer and is fine.
		_ = workflow.RequestCancelExternalWorkflow(ctx, RefreshWorkflowID(in.UserID, in.ProviderID), "").Get(ctx, nil)
	}
	var projectIDs []string
	if err := workflow.ExecuteLocalActivity(lctx, ActProjectsUsing, ConnectionRef{UserID: in.UserID, ProviderID: in.ProviderID}).Get(ctx, &projectIDs); err != nil {
		return err
	}
	queues, err := projectQueues(ctx, projectIDs)
	if err != nil {
		return err
	}
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    15 * time.Second,
		// Keep trying: the row must not go while a workspace still holds the credential (a
		// host away keeps the disconnect waiting for it).
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
		Summary:     "Remove the credential from a project's OpenCode",
	}
	futures := make([]workflow.Future, 0, len(projectIDs))
	for i, id := range projectIDs {
		futures = append(futures, workflow.ExecuteActivity(onQueue(ctx, opts, queues[i]), ActRemoveCredentials, ProjectCredentialsInput{ProjectID: id, ProviderID: in.ProviderID}))
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return workflow.ExecuteLocalActivity(lctx, ActDeleteConnection, in).Get(ctx, nil)
}
