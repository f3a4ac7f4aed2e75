package setups

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/doce-dev/doce/workflows"
)

// A host's pool with a size is started with its configuration; the shared queue's pool, from
// before hosts, is only told to hold nothing, and its absence is no error. A pool of size 0
// starts nothing.
func TestConfigurePool(t *testing.T) {
	host := workflows.HostQueue{Host: "h1", TaskQueue: workflows.HostTaskQueue("q", "h1")}
	for _, size := range []int{3, 0} {
		tc := &mocks.Client{}
		signalled := map[string]workflows.PoolConfig{}
		tc.On("SignalWorkflow", mock.Anything, mock.Anything, "", workflows.SignalPoolConfigure, mock.Anything).
			Return(func(_ context.Context, id, _, _ string, arg any) error {
				signalled[id] = arg.(workflows.PoolConfig)
				return serviceerror.NewNotFound("no such workflow")
			}).Maybe()
		var started []workflows.PoolState
		tc.On("SignalWithStartWorkflow", mock.Anything, mock.Anything, workflows.SignalPoolConfigure, mock.Anything,
			mock.Anything, workflows.TypeWorkspacePool, mock.Anything).
			Return(func(_ context.Context, id, _ string, _ any, o client.StartWorkflowOptions, _ any, args ...any) (client.WorkflowRun, error) {
				if id != workflows.PoolWorkflowID(host.TaskQueue) || o.TaskQueue != "q" {
					t.Errorf("started %s on %s, want the host's pool on the shared queue", id, o.TaskQueue)
				}
				started = append(started, args[0].(workflows.PoolState))
				return nil, nil
			}).Maybe()
		s := &Service{Temporal: tc, TaskQueue: "q"}
		if err := s.ConfigurePool(context.Background(), host, workflows.PoolConfig{Size: size, Image: "img"}); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if c, ok := signalled[workflows.PoolWorkflowID("q")]; !ok || c.Size != 0 || c.Image != "img" {
			t.Errorf("size %d: the shared queue's pool was told %+v (%v), want size 0", size, c, ok)
		}
		switch {
		case size > 0 && (len(started) != 1 || started[0].Host != "h1" || started[0].Config.Size != size):
			t.Errorf("size %d: started %+v, want the host's pool", size, started)
		case size == 0 && (len(started) != 0 || len(signalled) != 2):
			t.Errorf("size 0: started %+v, told %v; want only the two pools told", started, signalled)
		}
	}
}
