package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity types of a push.
const (
	ActPushWork        = "git.pushWork"        // commit in the workspace, take it out, push it (the project's host)
	ActOpenPullRequest = "git.openPullRequest" // find or open the branch's pull request (the shared queue)
	ActRecordPush      = "git.recordPush"      // how the push ended, on the project row
)

// ErrTypePushRefused is a push or pull request that cannot work as asked: no forge connection
// for the repository, a token the forge refuses, a protected or moved branch, a missing base,
// nothing to push. Its message is fit to show the user.
const ErrTypePushRefused = "PushRefused"

// ProjectPushWorkflowID is the one workflow id a project's pushes run under, so two never run
// at once.
func ProjectPushWorkflowID(projectID string) string { return "project-push:" + projectID }

// PushInput starts ProjectPush. It carries what the user asked, never a token: the activities
// find the owner's forge connection and decrypt its token themselves.
type PushInput struct {
	ProjectID   string
	RequestedBy string
	Branch      string // the branch on the forge to push to
	Message     string // the commit message
	// PullRequest, when set, asks for a pull request of Branch; one open for it already is kept.
	PullRequest *PullRequestInput `json:",omitempty"`
}

// PullRequestInput is the pull request asked for.
type PullRequestInput struct {
	Title string
	Body  string
	Base  string // empty: the repository's default branch
}

// PushWorkInput is what ActPushWork takes.
type PushWorkInput struct {
	ProjectID string
	Branch    string
	Message   string
	Base      string // the branch the work must be beyond; empty: the repository's default
	// PullRequest says a pull request of Branch follows, so Branch must not be the base.
	PullRequest bool `json:",omitempty"`
}

// PushWorkResult is what ActPushWork did.
type PushWorkResult struct {
	Commit    string // what the branch points at now
	Base      string // the base branch, as asked or the repository's default
	Committed bool   // a commit was made of changes in the workspace
	UpToDate  bool   // the forge had the work already
}

// OpenPullRequestInput is what ActOpenPullRequest takes.
type OpenPullRequestInput struct {
	ProjectID   string
	Head, Base  string
	Title, Body string
}

// PullRequestRef names a pull request on the forge.
type PullRequestRef struct {
	Number int64
	URL    string
}

// PushRecord is how a push ended, for ActRecordPush.
type PushRecord struct {
	ProjectID   string
	Branch      string
	Failed      bool
	Error       string
	Commit      string
	PullRequest *PullRequestRef `json:",omitempty"`
}

// pushWorkOpts: committing, taking the work out and pushing it take seconds, more for a large
// repository on a slow forge; a step that failed for a reason it cannot place is tried twice
// more. The heartbeat notices a host's worker gone.
var pushWorkOpts = workflow.ActivityOptions{
	StartToCloseTimeout: 15 * time.Minute,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
		MaximumAttempts: 3, NonRetryableErrorTypes: []string{ErrTypePushRefused, ErrTypeProjectGone}},
	Summary: "Commit the workspace's changes and push them to the forge",
}

// pullRequestOpts: a forge API call or two; a forge briefly away is waited out for a minute.
var pullRequestOpts = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: 20 * time.Second,
		MaximumAttempts: 5, NonRetryableErrorTypes: []string{ErrTypePushRefused, ErrTypeProjectGone}},
	Summary: "Find or open the branch's pull request",
}

// pushFailedMessage is what the user reads of a failure the push could not place.
const pushFailedMessage = "The push did not complete because of a problem on doce's side. Try again; if it persists, tell your operator."

// ProjectPush commits the project's work in its workspace, pushes it to a branch of the
// repository the project was made from, and finds or opens that branch's pull request. How it
// ended is recorded on the project (the web tier recorded its start). Looking the pull request
// up before opening one makes a retried step, and a second push of the branch, keep the one
// pull request.
func ProjectPush(ctx workflow.Context, in PushInput) error {
	rec := PushRecord{ProjectID: in.ProjectID, Branch: in.Branch}
	err := push(ctx, in, &rec)
	if err != nil {
		rec.Failed, rec.Error = true, pushFailedMessage
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && (appErr.Type() == ErrTypePushRefused || appErr.Type() == ErrTypeProjectGone) {
			rec.Error = appErr.Message()
		}
	}
	if rerr := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, recordOpts), ActRecordPush, rec).Get(ctx, nil); rerr != nil {
		workflow.GetLogger(ctx).Warn("unable to record the push", "error", rerr)
	}
	return err
}

func push(ctx workflow.Context, in PushInput, rec *PushRecord) error {
	queue, err := projectQueue(ctx, in.ProjectID)
	if err != nil {
		return err
	}
	work := PushWorkInput{ProjectID: in.ProjectID, Branch: in.Branch, Message: in.Message}
	if in.PullRequest != nil {
		work.Base, work.PullRequest = in.PullRequest.Base, true
	}
	var res PushWorkResult
	if err := workflow.ExecuteActivity(onQueue(ctx, pushWorkOpts, queue), ActPushWork, work).Get(ctx, &res); err != nil {
		return err
	}
	rec.Commit = res.Commit
	if in.PullRequest == nil {
		return nil
	}
	var pr PullRequestRef
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, pullRequestOpts), ActOpenPullRequest, OpenPullRequestInput{
		ProjectID: in.ProjectID, Head: in.Branch, Base: res.Base, Title: in.PullRequest.Title, Body: in.PullRequest.Body,
	}).Get(ctx, &pr)
	if err != nil {
		return err
	}
	rec.PullRequest = &pr
	return nil
}
