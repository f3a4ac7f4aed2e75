package setups

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// ErrWrongState means the project is not in a state the asked-for stop or start can begin
// from; the project's Status says which state it is in.
var ErrWrongState = errors.New("setups: the project's workspace cannot do that now")

// ActivityEvery is how often at most this process tells a project's idle watch about use: once
// a minute, or four times per idle time when that is shorter (tests use seconds). The watch
// only needs to hear once within its idle time; a page at 200 requests a second must not
// become 200 signals.
func (s *Service) ActivityEvery() time.Duration {
	idle := s.WorkspaceIdle
	if idle <= 0 {
		idle = workflows.DefaultWorkspaceIdle
	}
	return min(time.Minute, idle/4)
}

// StopWorkspace stops a ready project's workspace (ProjectStop). A stop already under way is
// the same run. It returns once the workflow is started; p.Status is then stopping.
func (s *Service) StopWorkspace(ctx context.Context, p *store.Project, requestedBy string) error {
	return s.move(ctx, p, []status.Project{status.Ready, status.Stopping}, status.Stopping,
		workflows.StopWorkflowID(p.ID), workflows.TypeProjectStop, requestedBy)
}

// StartWorkspace starts a stopped project's workspace again (ProjectStart), handing OpenCode
// its credentials again. A start already under way is the same run; p.Status is then starting.
func (s *Service) StartWorkspace(ctx context.Context, p *store.Project, requestedBy string) error {
	return s.move(ctx, p, []status.Project{status.Stopped, status.Starting}, status.Starting,
		workflows.StartWorkflowID(p.ID), workflows.TypeProjectStart, requestedBy)
}

// move makes the first move of a stop or start (guarded, so racing requests and workflows
// cannot undo each other) and starts the workflow that finishes it. Should Temporal refuse,
// the project goes back to where it was, so its owner can ask again.
func (s *Service) move(ctx context.Context, p *store.Project, from []status.Project, to status.Project, workflowID, workflowType, requestedBy string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	was := p.Status
	moved, err := s.Store.TransitionProject(ctx, p.ID, from, to, "")
	if err != nil {
		return err
	}
	if !moved {
		if fresh, err := s.Store.Project(ctx, p.ID); err == nil {
			p.Status = fresh.Status
		}
		return ErrWrongState
	}
	o := s.projectRun(p, workflowID, enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING)
	o.Memo["requestedBy"] = requestedBy
	_, err = s.Temporal.ExecuteWorkflow(ctx, o, workflowType, workflows.StepInput{ProjectID: p.ID})
	if err != nil {
		if was != to {
			_, _ = s.Store.TransitionProject(context.WithoutCancel(ctx), p.ID, []status.Project{to}, was, "")
		}
		return fmt.Errorf("setups: unable to start %s of %s: %w", workflowType, p.ID, err)
	}
	p.Status, p.SetupError = to, ""
	return nil
}

// RecordActivity says someone uses the ready project's workspace: a viewer, a prompt. It resets
// the project's idle watch (starting one if none runs), at most once per ActivityEvery per
// project and process; calls in between return at once. The web tier and the chat share it.
func (s *Service) RecordActivity(ctx context.Context, p *store.Project) error {
	if p.Status != status.Ready {
		return nil
	}
	now := time.Now()
	if last, ok := s.active.Load(p.ID); ok && now.Sub(last.(time.Time)) < s.ActivityEvery() {
		return nil
	}
	s.active.Store(p.ID, now)
	if err := s.WatchIdle(ctx, p.ID); err != nil {
		s.active.CompareAndDelete(p.ID, now) // the next use tries again
		return err
	}
	return nil
}

// WatchIdle signals the project's WorkspaceIdle that its workspace is in use, starting the
// watch when none runs (signal-with-start: one call, one run per project).
func (s *Service) WatchIdle(ctx context.Context, projectID string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.Temporal.SignalWithStartWorkflow(ctx, workflows.IdleWorkflowID(projectID), workflows.SignalActivity,
		workflows.ActivitySignal{Idle: s.WorkspaceIdle},
		client.StartWorkflowOptions{
			TaskQueue:             s.TaskQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.SAProjectID.ValueSet(projectID)),
		}, workflows.TypeWorkspaceIdle, workflows.IdleInput{ProjectID: projectID, Idle: s.WorkspaceIdle})
	if err != nil {
		return fmt.Errorf("setups: unable to signal the idle watch of %s: %w", projectID, err)
	}
	return nil
}

// EnsureIdleWatches starts the idle watch of every ready project that has none (projects made
// ready before idle stop existed, or whose watch was terminated by hand); running watches are
// left as they are. The worker runs it at start; it returns how many projects it looked at.
func (s *Service) EnsureIdleWatches(ctx context.Context) (int, error) {
	seen, after := 0, ""
	for {
		page, err := s.Store.ProjectsPage(ctx, after, 100)
		if err != nil {
			return seen, err
		}
		if len(page) == 0 {
			return seen, nil
		}
		for _, p := range page {
			after = p.ID
			if p.Status != status.Ready || p.DeletedAt != nil {
				continue
			}
			seen++
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			_, err := s.Temporal.ExecuteWorkflow(cctx, client.StartWorkflowOptions{
				ID:                       workflows.IdleWorkflowID(p.ID),
				TaskQueue:                s.TaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
				WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
				TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.SAProjectID.ValueSet(p.ID)),
			}, workflows.TypeWorkspaceIdle, workflows.IdleInput{ProjectID: p.ID, Idle: s.WorkspaceIdle})
			cancel()
			if err != nil {
				return seen, fmt.Errorf("setups: unable to start the idle watch of %s: %w", p.ID, err)
			}
		}
	}
}
