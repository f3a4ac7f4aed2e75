package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity types of a pull.
const (
	ActPullWork   = "git.pullWork"   // fetch the base, bring it into the workspace, merge it (the project's host)
	ActRecordPull = "git.recordPull" // how the pull ended, on the project row
)

// A pull runs under ProjectPushWorkflowID too: one git workflow of a project at a time, so a
// pull never merges into a workspace a push is taking out, nor the reverse.

// PullInput starts ProjectPull. It carries what the user asked, never a token.
type PullInput struct {
	ProjectID   string
	RequestedBy string
	Base        string // the branch to merge; empty: the repository's default branch
}

// PullWorkInput is what ActPullWork takes.
type PullWorkInput struct {
	ProjectID string
	Base      string
}

// PullWorkResult is what ActPullWork did. A merge with conflicts is an ErrTypePushRefused error
// naming the files instead.
type PullWorkResult struct {
	Base          string // the base branch, as asked or the repository's default
	Commit        string // the base's commit fetched
	Ahead, Behind int    // the workspace's HEAD against Commit once merged
}

// PullRecord is how a pull ended, for ActRecordPull.
type PullRecord struct {
	ProjectID     string
	Failed        bool
	Error         string
	Base, Commit  string
	Ahead, Behind *int `json:",omitempty"`
}

// pullFailedMessage is what the user reads of a failure the pull could not place.
const pullFailedMessage = "The pull did not complete because of a problem on doce's side. Try again; if it persists, tell your operator."

// ProjectPull fetches the base branch of the project's repository on doce's side, brings it
// into the workspace and merges it into the workspace's branch, committing the agent's work
// first. How it ended is recorded on the project (the web tier recorded its start).
func ProjectPull(ctx workflow.Context, in PullInput) error {
	rec := PullRecord{ProjectID: in.ProjectID}
	err := pull(ctx, in, &rec)
	if err != nil {
		rec.Failed, rec.Error = true, pullFailedMessage
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && (appErr.Type() == ErrTypePushRefused || appErr.Type() == ErrTypeProjectGone) {
			rec.Error = appErr.Message()
		}
	}
	if rerr := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, recordOpts), ActRecordPull, rec).Get(ctx, nil); rerr != nil {
		workflow.GetLogger(ctx).Warn("unable to record the pull", "error", rerr)
	}
	return err
}

func pull(ctx workflow.Context, in PullInput, rec *PullRecord) error {
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	opts := pushWorkOpts
	opts.Summary = "Fetch the base branch and merge it into the workspace"
	var res PullWorkResult
	if err := workflow.ExecuteActivity(onQueue(ctx, opts, queue), ActPullWork, PullWorkInput{ProjectID: in.ProjectID, Base: in.Base}).Get(ctx, &res); err != nil {
		return err
	}
	rec.Base, rec.Commit, rec.Ahead, rec.Behind = res.Base, res.Commit, &res.Ahead, &res.Behind
	return nil
}
