package setups

import (
	"context"

	"github.com/doce-dev/doce/workflows"
)

// WakePool tells the workspace pool of host that a project claimed one of its workspaces, so
// it starts the replacement now rather than at its next round.
func (s *Service) WakePool(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return s.Temporal.SignalWorkflow(ctx, workflows.PoolWorkflowID(workflows.HostTaskQueue(s.TaskQueue, host)), "", workflows.SignalPoolWake, nil)
}
