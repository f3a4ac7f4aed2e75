package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"

	. "github.com/doce-dev/doce/workflows"
)

// TestProjectPush: the work is pushed on the project's host and the pull request found or
// opened with the base the push resolved; the outcome is recorded with both.
func TestProjectPush(t *testing.T) {
	env := newTestEnv(t)
	var queues queueLog
	var rec PushRecord
	env.OnActivity(ActPushWork, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PushWorkInput) (PushWorkResult, error) {
		queues.record(ctx)
		if in.Branch != "doce/page" || in.Message != "Add a page" || in.Base != "" {
			t.Errorf("push input: %+v", in)
		}
		return PushWorkResult{Commit: "c0ffee", Base: "main", Committed: true}, nil
	})
	env.OnActivity(ActOpenPullRequest, mock.Anything, mock.Anything).Return(func(ctx context.Context, in OpenPullRequestInput) (PullRequestRef, error) {
		queues.record(ctx)
		if in.Head != "doce/page" || in.Base != "main" || in.Title != "A page" {
			t.Errorf("pull request input: %+v", in)
		}
		return PullRequestRef{Number: 7, URL: "https://git.example.com/ada/app/pulls/7"}, nil
	})
	env.OnActivity(ActRecordPush, mock.Anything, mock.Anything).Return(func(_ context.Context, r PushRecord) error {
		rec = r
		return nil
	})
	env.ExecuteWorkflow(ProjectPush, PushInput{ProjectID: "p1", Branch: "doce/page", Message: "Add a page", PullRequest: &PullRequestInput{Title: "A page"}})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: %v", env.GetWorkflowError())
	}
	if rec.Failed || rec.Commit != "c0ffee" || rec.Branch != "doce/page" || rec.PullRequest == nil || rec.PullRequest.Number != 7 {
		t.Errorf("recorded: %+v", rec)
	}
	if q := queues.get(ActPushWork); len(q) != 1 || q[0] != testHost.TaskQueue {
		t.Errorf("the push ran on %v, want the project's host", q)
	}
	if q := queues.get(ActOpenPullRequest); len(q) != 1 || q[0] == testHost.TaskQueue {
		t.Errorf("the pull request was opened on %v, want the shared queue", q)
	}
}

// TestProjectPushRefused: a refusal is recorded with its message and asks for no pull request;
// a failure the push cannot place is recorded in general words, never its internals.
func TestProjectPushRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{temporal.NewNonRetryableApplicationError("The forge refused the push to main.", ErrTypePushRefused, nil), "The forge refused the push to main."},
		{errors.New("docker: socket /run/secret.sock: connection refused"), "problem on doce's side"},
	} {
		env := newTestEnv(t)
		var rec PushRecord
		env.OnActivity(ActPushWork, mock.Anything, mock.Anything).Return(PushWorkResult{}, tc.err)
		env.OnActivity(ActRecordPush, mock.Anything, mock.Anything).Return(func(_ context.Context, r PushRecord) error {
			rec = r
			return nil
		})
		env.ExecuteWorkflow(ProjectPush, PushInput{ProjectID: "p1", Branch: "main", Message: "m", PullRequest: &PullRequestInput{Title: "t"}})
		if env.GetWorkflowError() == nil {
			t.Errorf("%v: the workflow succeeded", tc.err)
		}
		if !rec.Failed || !strings.Contains(rec.Error, tc.want) || strings.Contains(rec.Error, "socket") || rec.PullRequest != nil {
			t.Errorf("%v: recorded %+v, want a failure saying %q", tc.err, rec, tc.want)
		}
	}
}
