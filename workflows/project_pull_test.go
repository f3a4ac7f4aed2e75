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

// TestProjectPull: the base is merged on the project's host and the outcome recorded with the
// base it resolved, its commit and the counts.
func TestProjectPull(t *testing.T) {
	env := newTestEnv(t)
	var queues queueLog
	var rec PullRecord
	env.OnActivity(ActPullWork, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PullWorkInput) (PullWorkResult, error) {
		queues.record(ctx)
		if in.ProjectID != "p1" || in.Base != "" {
			t.Errorf("pull input: %+v", in)
		}
		return PullWorkResult{Base: "main", Commit: "c0ffee", Ahead: 2}, nil
	})
	env.OnActivity(ActRecordPull, mock.Anything, mock.Anything).Return(func(_ context.Context, r PullRecord) error {
		rec = r
		return nil
	})
	env.ExecuteWorkflow(ProjectPull, PullInput{ProjectID: "p1"})
	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("workflow: %v", env.GetWorkflowError())
	}
	if rec.Failed || rec.Base != "main" || rec.Commit != "c0ffee" || rec.Ahead == nil || *rec.Ahead != 2 || rec.Behind == nil || *rec.Behind != 0 {
		t.Errorf("recorded: %+v", rec)
	}
	if q := queues.get(ActPullWork); len(q) != 1 || q[0] != testHost.TaskQueue {
		t.Errorf("the pull ran on %v, want the project's host", q)
	}
}

// TestProjectPullRefused: a conflict is recorded with its message (the files) and no counts; a
// failure the pull cannot place is recorded in general words, never its internals.
func TestProjectPullRefused(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{temporal.NewNonRetryableApplicationError("The base (main) changed the same lines as the project's work in: a.txt.", ErrTypePushRefused, nil), "work in: a.txt."},
		{errors.New("docker: socket /run/secret.sock: connection refused"), "problem on doce's side"},
	} {
		env := newTestEnv(t)
		var rec PullRecord
		env.OnActivity(ActPullWork, mock.Anything, mock.Anything).Return(PullWorkResult{}, tc.err)
		env.OnActivity(ActRecordPull, mock.Anything, mock.Anything).Return(func(_ context.Context, r PullRecord) error {
			rec = r
			return nil
		})
		env.ExecuteWorkflow(ProjectPull, PullInput{ProjectID: "p1", Base: "main"})
		if env.GetWorkflowError() == nil {
			t.Errorf("%v: the workflow succeeded", tc.err)
		}
		if !rec.Failed || !strings.Contains(rec.Error, tc.want) || strings.Contains(rec.Error, "socket") || rec.Ahead != nil {
			t.Errorf("%v: recorded %+v, want a failure saying %q", tc.err, rec, tc.want)
		}
	}
}
