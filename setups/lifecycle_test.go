package setups

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Many views of one project at once become one signal per ActivityEvery; a failed signal is
// tried again on the next view.
func TestRecordActivityIsThrottledPerProject(t *testing.T) {
	tc := &mocks.Client{}
	var mu sync.Mutex
	signalled := map[string]int{}
	fail := false
	tc.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, workflows.SignalActivity,
		workflows.ActivitySignal{Idle: time.Hour}, mock.Anything, "WorkspaceIdle", mock.Anything).
		Return(func(_ context.Context, id string, _ string, _ any, _ client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
			mu.Lock()
			defer mu.Unlock()
			if fail {
				return nil, errors.New("temporal: unavailable")
			}
			signalled[id]++
			return nil, nil
		}).Maybe()
	s := &Service{Temporal: tc, TaskQueue: "q", WorkspaceIdle: time.Hour}
	if got := s.ActivityEvery(); got != time.Minute {
		t.Fatalf("ActivityEvery with a 1h idle time: %s, want 1m", got)
	}
	a := &store.Project{ID: "a", Status: store.ProjectReady}
	b := &store.Project{ID: "b", Status: store.ProjectReady}
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = s.RecordActivity(context.Background(), a) }()
		go func() { defer wg.Done(); _ = s.RecordActivity(context.Background(), b) }()
	}
	wg.Wait()
	// A stopped project has no watch to tell.
	_ = s.RecordActivity(context.Background(), &store.Project{ID: "c", Status: store.ProjectStopped})
	if signalled[workflows.IdleWorkflowID("a")] != 1 || signalled[workflows.IdleWorkflowID("b")] != 1 || len(signalled) != 2 {
		t.Fatalf("signals %v, want one for each ready project", signalled)
	}

	d := &store.Project{ID: "d", Status: store.ProjectReady}
	fail = true
	if err := s.RecordActivity(context.Background(), d); err == nil {
		t.Fatal("want the failed signal reported")
	}
	fail = false
	if err := s.RecordActivity(context.Background(), d); err != nil || signalled[workflows.IdleWorkflowID("d")] != 1 {
		t.Fatalf("after a failed signal: %v, %d signals, want the next view to signal", err, signalled[workflows.IdleWorkflowID("d")])
	}
}

func TestActivityEveryFollowsAShortIdleTime(t *testing.T) {
	s := &Service{WorkspaceIdle: 8 * time.Second}
	if got := s.ActivityEvery(); got != 2*time.Second {
		t.Fatalf("ActivityEvery with an 8s idle time: %s, want 2s", got)
	}
}
