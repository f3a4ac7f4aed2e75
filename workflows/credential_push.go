package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// PushWorkflowID is the one run handing a user's replaced credential to their projects.
func PushWorkflowID(userID, providerID string) string {
	return "credential-push:" + userID + ":" + providerID
}

// CredentialPush hands a connection's current credential to every running project of the user
// on that provider, after the user replaced the key. Each push reads the connection as it is
// then, so a run started by a later replacement only has to run after this one.
func CredentialPush(ctx workflow.Context, ref ConnectionRef) error {
	lctx := withConnectionReads(ctx)
	pushToProjects(ctx, lctx, ref, TokenInfo{})
	return nil
}

// pushToProjects hands the connection's current credential to each of the user's projects on
// the provider, in parallel, each on its host. A project that cannot take it before the token expires is left:
// its OpenCode gets the current token when it next starts.
func pushToProjects(ctx, lctx workflow.Context, ref ConnectionRef, tok TokenInfo) {
	var projectIDs []string
	if err := workflow.ExecuteLocalActivity(lctx, ActProjectsUsing, ref).Get(ctx, &projectIDs); err != nil {
		workflow.GetLogger(ctx).Warn("unable to list projects to push the token to", "error", err)
		return
	}
	queues, err := projectQueues(ctx, projectIDs)
	if err != nil {
		workflow.GetLogger(ctx).Warn("unable to find the hosts of the projects to push the token to", "error", err)
		return
	}
	budget := max(tok.ExpiresAt.Sub(workflow.Now(ctx)), time.Minute)
	opts := workflow.ActivityOptions{
		StartToCloseTimeout:    time.Minute,
		ScheduleToCloseTimeout: budget,
		HeartbeatTimeout:       15 * time.Second,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute},
		Summary:                "Hand the new token to a project's OpenCode",
	}
	futures := make([]workflow.Future, 0, len(projectIDs))
	for i, id := range projectIDs {
		futures = append(futures, workflow.ExecuteActivity(onQueue(ctx, opts, queues[i]), ActPushCredentials, ProjectCredentialsInput{ProjectID: id, ProviderID: ref.ProviderID}))
	}
	for i, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("project did not take the new token", "project", projectIDs[i], "error", err)
		}
	}
}

// withConnectionReads sets the options of the local activities that read and mark connections
// and list projects: short database work, retried until the database answers.
func withConnectionReads(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute},
	})
}
