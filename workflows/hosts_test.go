package workflows_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	. "github.com/doce-dev/doce/workflows"
)

// testHost is where the test environments place every project.
var testHost = HostQueue{Host: "h1", TaskQueue: HostTaskQueue("doce", "h1")}

// queueLog records which task queue each activity ran on.
type queueLog struct {
	mu sync.Mutex
	on map[string][]string // activity type → task queues, in order
}

func (q *queueLog) record(ctx context.Context) {
	info := activity.GetInfo(ctx)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.on == nil {
		q.on = map[string][]string{}
	}
	q.on[info.ActivityType.Name] = append(q.on[info.ActivityType.Name], info.TaskQueue)
}

func (q *queueLog) get(name string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.on[name]
}

// onTestHost places every project on testHost.
func onTestHost(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(ActPlaceProject, mock.Anything, mock.Anything).Return(testHost, nil)
	env.OnActivity(ActProjectHost, mock.Anything, mock.Anything).Return(testHost, nil)
	env.OnActivity(ActProjectHosts, mock.Anything, mock.Anything).Return(func(_ context.Context, ids []string) ([]HostQueue, error) {
		out := make([]HostQueue, len(ids))
		for i := range out {
			out[i] = testHost
		}
		return out, nil
	})
}

// setupStepNames are ProjectSetup's steps, in order.
var setupStepNames = []string{ActComposeUp, ActWaitHealthy, ActSetProviderCredentials, ActSessionCreate, ActSendInitialPrompt}

// Every setup step runs on the host the setup placed the project on. The short steps run as
// local activities when the workflow's worker serves that host; when it does not, each refuses
// at once (not retried) and runs on the host's queue. The placement runs on the workflow's queue.
func TestProjectSetupRunsEveryStepOnTheProjectsHost(t *testing.T) {
	local := []string{ActSetProviderCredentials, ActSessionCreate, ActSendInitialPrompt}
	for _, sameHost := range []bool{true, false} {
		env := newBareTestEnv(t)
		var q queueLog
		places := 0
		env.OnActivity(ActPlaceProject, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ StepInput) (HostQueue, error) {
			q.record(ctx)
			places++
			return testHost, nil
		})
		// run stands for a step's activity: run locally by a worker of another host, it refuses.
		run := func(ctx context.Context) error {
			q.record(ctx)
			if activity.GetInfo(ctx).IsLocalActivity && !sameHost {
				return temporal.NewNonRetryableApplicationError("the workspace is on another host", ErrTypeNotThisHost, nil)
			}
			return nil
		}
		for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt} {
			env.OnActivity(name, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ StepInput) error { return run(ctx) })
		}
		env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ StepInput) (ComposeUpResult, error) {
			return ComposeUpResult{HostPort: 1}, run(ctx)
		})
		env.OnActivity(ActSessionCreate, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ StepInput) (SessionResult, error) {
			return SessionResult{SessionID: "ses_1"}, run(ctx)
		})
		env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Return(nil)
		env.OnActivity(ActWatchIdle, mock.Anything, mock.Anything).Return(nil)
		env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("same host %v: %v", sameHost, err)
		}
		for _, name := range setupStepNames {
			want := []string{testHost.TaskQueue}
			if slices.Contains(local, name) {
				want = []string{"default-test-taskqueue"} // the workflow's own: local
				if !sameHost {
					want = append(want, testHost.TaskQueue)
				}
			}
			if got := q.get(name); !slices.Equal(got, want) {
				t.Errorf("same host %v: %s ran on %v, want %v", sameHost, name, got, want)
			}
		}
		if got := q.get(ActPlaceProject); places != 1 || got[0] == testHost.TaskQueue {
			t.Errorf("placed %d times, on %v; want once, on the workflow's queue", places, got)
		}
	}
}

// No host with room fails the first step with the reason, for an operator; a retry places
// again and goes on.
func TestProjectSetupWithoutAHostWaitsForAnOperator(t *testing.T) {
	env := newBareTestEnv(t)
	places := 0
	env.OnActivity(ActPlaceProject, mock.Anything, mock.Anything).Return(func(context.Context, StepInput) (HostQueue, error) {
		places++
		if places <= PlaceAttempts {
			return HostQueue{}, temporal.NewApplicationError("No Docker host can take the workspace now.", ErrTypeNoHost)
		}
		return testHost, nil
	})
	env.OnActivity(ActComposeUp, mock.Anything, mock.Anything).Return(ComposeUpResult{HostPort: 1}, nil)
	for _, name := range []string{ActWaitHealthy, ActSetProviderCredentials, ActSendInitialPrompt, ActWatchIdle} {
		env.OnActivity(name, mock.Anything, mock.Anything).Return(nil)
	}
	env.OnActivity(ActSessionCreate, mock.Anything, mock.Anything).Return(SessionResult{SessionID: "ses_1"}, nil)
	var failed ProgressUpdate
	env.OnActivity(ActRecordProgress, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		if u := args[1].(ProgressUpdate); u.Status == "failed" {
			failed = u
		}
	}).Return(nil)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflowNoRejection(UpdateRetry, "retry-1", t)
	}, 30*time.Minute) // long after the placement gave up
	env.ExecuteWorkflow(ProjectSetup, SetupInput{ProjectID: "p1"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if failed.Step != ActComposeUp || failed.Error != "No Docker host can take the workspace now." {
		t.Errorf("failure recorded %+v, want the first step with the reason", failed)
	}
	if places != PlaceAttempts+1 {
		t.Errorf("placed %d times, want every attempt then once after the retry", places)
	}
}

// A host's pool plans, starts and removes its workspaces on that host.
func TestWorkspacePoolRunsOnItsHost(t *testing.T) {
	env := newBareTestEnv(t)
	var q queueLog
	var mu sync.Mutex
	var hosts []string
	env.OnActivity(ActPoolPlan, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PoolPlanInput) (PoolPlan, error) {
		q.record(ctx)
		mu.Lock()
		defer mu.Unlock()
		hosts = append(hosts, in.Host)
		if len(hosts) == 1 {
			return PoolPlan{Remove: []string{"old"}, Create: []string{"new"}}, nil
		}
		return PoolPlan{}, nil
	})
	env.OnActivity(ActPoolCreate, mock.Anything, mock.Anything).Return(func(ctx context.Context, in PoolCreateInput) error {
		q.record(ctx)
		if in.Host != testHost.Host {
			t.Errorf("created on host %q, want %s", in.Host, testHost.Host)
		}
		return nil
	})
	env.OnActivity(ActPoolRemove, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ string) error { q.record(ctx); return nil })
	env.ExecuteWorkflow(WorkspacePool, PoolState{Config: PoolConfig{Size: 1, Image: "img"}, Host: testHost.Host, TaskQueue: testHost.TaskQueue})
	for _, name := range []string{ActPoolPlan, ActPoolCreate, ActPoolRemove} {
		got := q.get(name)
		if len(got) == 0 {
			t.Fatalf("%s never ran", name)
		}
		for _, queue := range got {
			if queue != testHost.TaskQueue {
				t.Fatalf("%s ran on %s, want %s", name, queue, testHost.TaskQueue)
			}
		}
	}
	if hosts[0] != testHost.Host {
		t.Errorf("planned for host %q, want %s", hosts[0], testHost.Host)
	}
}
