package setups

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/status"
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
	a := &store.Project{ID: "a", Status: status.Ready}
	b := &store.Project{ID: "b", Status: status.Ready}
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(2)
		go func() { defer wg.Done(); _ = s.RecordActivity(context.Background(), a) }()
		go func() { defer wg.Done(); _ = s.RecordActivity(context.Background(), b) }()
	}
	wg.Wait()
	// A stopped project has no watch to tell.
	_ = s.RecordActivity(context.Background(), &store.Project{ID: "c", Status: status.Stopped})
	if signalled[workflows.IdleWorkflowID("a")] != 1 || signalled[workflows.IdleWorkflowID("b")] != 1 || len(signalled) != 2 {
		t.Fatalf("signals %v, want one for each ready project", signalled)
	}

	d := &store.Project{ID: "d", Status: status.Ready}
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

func TestEnsureIdleWatchesStartsOneForEachReadyProject(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := migrations.Up(ctx, st.DB); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	var ready []string
	for _, s := range []status.Project{status.Ready, status.Stopped, status.SettingUp, status.Ready, status.Deleted} {
		p := &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
		if _, _, err := st.CreateProject(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
		p.Status = s
		if _, err := st.TransitionProject(ctx, p.ID, status.Live, s, ""); err != nil {
			t.Fatal(err)
		}
		if s == status.Deleted {
			st.MarkProjectDeleted(ctx, p.ID)
		}
		if s == status.Ready {
			ready = append(ready, workflows.IdleWorkflowID(p.ID))
		}
	}
	tc := &mocks.Client{}
	var started []string
	tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, "WorkspaceIdle", mock.Anything).
		Return(func(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
			if o.WorkflowIDConflictPolicy != enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING {
				t.Errorf("%s started with conflict policy %s: a running watch must be left alone", o.ID, o.WorkflowIDConflictPolicy)
			}
			started = append(started, o.ID)
			return nil, nil
		})
	s := &Service{Temporal: tc, Store: st, TaskQueue: "q"}
	n, err := s.EnsureIdleWatches(ctx)
	slices.Sort(started)
	slices.Sort(ready)
	if err != nil || n != 2 || !slices.Equal(started, ready) {
		t.Fatalf("n=%d err=%v started %v, want the two ready projects' watches %v", n, err, started, ready)
	}
}
