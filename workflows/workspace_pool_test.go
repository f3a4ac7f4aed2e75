package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/workflow"

	. "github.com/doce-dev/doce/workflows"
)

// A round removes what the plan names, starts what it asks for, and a failed start does not
// stop the pool; a drain plans for size 0 until a refill; after its rounds the run continues as
// new with its state.
func TestWorkspacePoolRounds(t *testing.T) {
	env := newTestEnv(t)
	var mu sync.Mutex
	var plans []PoolPlanInput
	var created, removed []string
	env.OnActivity(ActPoolPlan, mock.Anything, mock.Anything).Return(func(_ context.Context, in PoolPlanInput) (PoolPlan, error) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, in)
		if len(plans) == 1 {
			return PoolPlan{Remove: []string{"old"}, Create: []string{"a", "b"}}, nil
		}
		return PoolPlan{}, nil
	})
	env.OnActivity(ActPoolCreate, mock.Anything, mock.Anything).Return(func(_ context.Context, in PoolCreateInput) error {
		mu.Lock()
		defer mu.Unlock()
		created = append(created, in.ID)
		if in.ID == "b" {
			return errors.New("OpenCode did not become healthy")
		}
		return nil
	})
	env.OnActivity(ActPoolRemove, mock.Anything, mock.Anything).Return(func(_ context.Context, id string) error {
		mu.Lock()
		defer mu.Unlock()
		removed = append(removed, id)
		return nil
	})
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPoolDrain, nil) }, time.Minute)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalPoolRefill, nil) }, 2*time.Minute)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SignalPoolConfigure, PoolConfig{Size: 5, Image: "img:2", Every: time.Hour})
	}, 3*time.Minute)

	env.ExecuteWorkflow(WorkspacePool, PoolState{Config: PoolConfig{Size: 2, Image: "img:1", MaxAge: time.Hour, Every: 10 * time.Second}})
	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("workflow ended with %v, want continue-as-new", err)
	}
	// b fails each of its three attempts; a starts once.
	if n := count(created, "a"); n != 1 || count(created, "b") != 3 || len(removed) != 1 || removed[0] != "old" {
		t.Fatalf("created %v removed %v, want a once, b three times, old removed", created, removed)
	}
	if len(plans) != PoolRoundsPerRun {
		t.Fatalf("%d rounds, want %d", len(plans), PoolRoundsPerRun)
	}
	sawDrain, sawRefill, sawNew := false, false, false
	for _, p := range plans {
		switch {
		case p.Size == 0:
			sawDrain = true
		case sawDrain && p.Size == 2 && p.Image == "img:1":
			sawRefill = true
		case p.Size == 5 && p.Image == "img:2":
			sawNew = true
		}
	}
	if !sawDrain || !sawRefill || !sawNew {
		t.Fatalf("drain=%v refill=%v reconfigured=%v over plans %v", sawDrain, sawRefill, sawNew, plans[:6])
	}
}

func count(xs []string, x string) int {
	n := 0
	for _, y := range xs {
		if y == x {
			n++
		}
	}
	return n
}
