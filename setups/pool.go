package setups

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/workflows"
)

// ConfigurePool hands the workspace pool of a host its configuration, starting its reconciler
// on the shared task queue when it is not running. With size 0 it only tells a running one
// (which then removes what it holds); it starts none. The pool of the shared queue, from before
// hosts, is told size 0: its workspaces have no host to be claimed on.
func (s *Service) ConfigurePool(ctx context.Context, host workflows.HostQueue, cfg workflows.PoolConfig) error {
	if err := s.configurePool(ctx, workflows.PoolWorkflowID(s.TaskQueue), workflows.PoolState{Config: workflows.PoolConfig{Image: cfg.Image, Every: cfg.Every}}); err != nil {
		return err
	}
	return s.configurePool(ctx, workflows.PoolWorkflowID(host.TaskQueue), workflows.PoolState{Config: cfg, Host: host.Host, TaskQueue: host.TaskQueue})
}

func (s *Service) configurePool(ctx context.Context, id string, st workflows.PoolState) error {
	cfg := st.Config
	if cfg.Size == 0 {
		err := s.Temporal.SignalWorkflow(ctx, id, "", workflows.SignalPoolConfigure, cfg)
		var notFound *serviceerror.NotFound
		if err != nil && !errors.As(err, &notFound) {
			return fmt.Errorf("setups: unable to configure the workspace pool: %w", err)
		}
		return nil
	}
	_, err := s.Temporal.SignalWithStartWorkflow(ctx, id, workflows.SignalPoolConfigure, cfg,
		client.StartWorkflowOptions{TaskQueue: s.TaskQueue}, workflows.TypeWorkspacePool, st)
	if err != nil {
		return fmt.Errorf("setups: unable to start the workspace pool: %w", err)
	}
	return nil
}

// WakePool tells the workspace pool of host that a project claimed one of its workspaces, so
// it starts the replacement now rather than at its next round.
func (s *Service) WakePool(ctx context.Context, host string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return s.signalPool(ctx, workflows.HostTaskQueue(s.TaskQueue, host), workflows.SignalPoolWake)
}

// DrainPool has the workspace pool of the host whose task queue is hostQueue remove every
// unclaimed workspace and stay empty, until RefillPool.
func (s *Service) DrainPool(ctx context.Context, hostQueue string) error {
	return s.signalPool(ctx, hostQueue, workflows.SignalPoolDrain)
}

// RefillPool undoes DrainPool: the pool starts workspaces up to its size again.
func (s *Service) RefillPool(ctx context.Context, hostQueue string) error {
	return s.signalPool(ctx, hostQueue, workflows.SignalPoolRefill)
}

func (s *Service) signalPool(ctx context.Context, hostQueue, signal string) error {
	return s.Temporal.SignalWorkflow(ctx, workflows.PoolWorkflowID(hostQueue), "", signal, nil)
}
