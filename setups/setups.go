// Package setups is how the web tier and the CLI ask Temporal for work: project setups (start,
// find, retry, cancel, progress), teardowns, workspace stop, start and idle watches, provider
// disconnects, OAuth sign-ins and credential pushes, and the prebuilt-workspace pool. The web
// tier and `doce setups` share it, so an operator's retry is the same act everywhere.
package setups

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Service acts on setup workflows.
type Service struct {
	Temporal  client.Client
	Store     *store.Store
	TaskQueue string
	Namespace string
	UIURL     string // the Temporal UI, for deep links
	// OperatorWait is how long a failed setup waits for retry or cancel (0: the workflow's default).
	OperatorWait time.Duration
	// WorkspaceIdle is how long a workspace nobody uses runs (0: the workflow's default).
	WorkspaceIdle time.Duration

	active sync.Map // project id → when RecordActivity last signalled its idle watch
}

// ErrNotWaiting means the setup is not stopped at a failed step, so there is nothing to retry
// or cancel.
var ErrNotWaiting = errors.New("setups: the setup is not waiting for an operator")

const callTimeout = 10 * time.Second

// projectRun is how a workflow about project p starts after its setup: on doce's queue, under
// the given id, a finished run of it no bar to a new one, and findable in the Temporal UI by
// project and owner.
func (s *Service) projectRun(p *store.Project, id string, conflict enumspb.WorkflowIdConflictPolicy) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: conflict,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		Memo:                     map[string]any{"project": p.Name},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAProjectID.ValueSet(p.ID),
			workflows.SAUserID.ValueSet(p.OwnerUserID),
		),
	}
}

// Start starts p's ProjectSetup. The workflow id is fixed per project and a running run is
// reused, so starting twice never runs two setups.
func (s *Service) Start(ctx context.Context, p *store.Project, requestedBy string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.SetupWorkflowID(p.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		Memo:                     map[string]any{"project": p.Name},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SAProjectID.ValueSet(p.ID),
			workflows.SAUserID.ValueSet(p.OwnerUserID),
			workflows.SAProviderID.ValueSet(p.ProviderID),
			workflows.SASetupState.ValueSet(string(status.SetupRunning)),
		),
	}, workflows.TypeProjectSetup, workflows.SetupInput{ProjectID: p.ID, RequestedBy: requestedBy, OperatorWait: s.OperatorWait,
		// A project whose first setup starts on a container it has claimed it from the pool.
		Prebuilt: p.WorkflowID == "" && p.ContainerID != "", Repository: p.RepositoryURL != ""})
	if err != nil {
		return fmt.Errorf("setups: unable to start setup of %s: %w", p.ID, err)
	}
	p.WorkflowID, p.Status = run.GetID(), status.SettingUp
	return s.Store.RecordSetupStarted(ctx, p.ID, p.WorkflowID)
}

// Retry resumes a failed setup at its failed step. A run that waits takes the retry update (its
// validator refuses it unless the run waits, so of two retries at once one is taken and the
// other learns it was not) and records the project setting up again itself: by the time the
// update completes the run may have finished or failed again, which a write here would undo.
// A run that gave up waiting is started again.
func (s *Service) Retry(ctx context.Context, p *store.Project, requestedBy string) error {
	err := s.update(ctx, p.ID, workflows.UpdateRetry)
	var nf *serviceerror.NotFound
	if !errors.As(err, &nf) {
		return err
	}
	if p.Status != status.SetupFailed {
		return ErrNotWaiting
	}
	p.SetupError = ""
	if err := s.Store.ClearSetupError(ctx, p.ID); err != nil {
		return err
	}
	return s.Start(ctx, p, requestedBy)
}

// Operation is what an operator does to a setup stopped at a failed step.
type Operation string

const (
	OpRetry  Operation = "retry"  // run the failed step again
	OpCancel Operation = "cancel" // tear the setup down
)

// Operate does op to project id's setup for an operator, the one way both the ops page and
// `doce setups` act: a deleted project is no such project. It returns the project it acted
// on, for explaining a refusal.
func (s *Service) Operate(ctx context.Context, projectID string, op Operation, requestedBy string) (*store.Project, error) {
	p, err := s.Store.Project(ctx, projectID)
	if err == nil && p.DeletedAt != nil {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if op == OpRetry {
		return p, s.Retry(ctx, p, requestedBy)
	}
	return p, s.Cancel(ctx, p)
}

// Cancel tears down a setup stopped at a failed step.
func (s *Service) Cancel(ctx context.Context, p *store.Project) error {
	err := s.update(ctx, p.ID, workflows.UpdateCancel)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return ErrNotWaiting
	}
	return err
}

// ErrNoAnswer means the setup's run did not take or refuse an update in time: no worker is
// processing it now.
var ErrNoAnswer = errors.New("setups: the setup did not answer in time")

// update sends a retry or cancel update and waits until the run has taken or refused it.
func (s *Service) update(ctx context.Context, projectID, name string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	h, err := s.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.SetupWorkflowID(projectID),
		UpdateName:   name,
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr) && appErr.Type() == workflows.ErrTypeNotWaiting:
		return ErrNotWaiting
	case errors.Is(err, context.DeadlineExceeded) || isDeadline(err):
		return fmt.Errorf("%w: %s of %s: %w", ErrNoAnswer, name, projectID, err)
	}
	return err
}

func isDeadline(err error) bool {
	var de *serviceerror.DeadlineExceeded
	return errors.As(err, &de)
}

// Delete starts the project's teardown; the project is gone once it completes.
func (s *Service) Delete(ctx context.Context, p *store.Project, requestedBy string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.TeardownWorkflowID(p.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo:                     map[string]any{"project": p.Name},
	}, workflows.TypeProjectTeardown, workflows.TeardownInput{ProjectID: p.ID, RequestedBy: requestedBy})
	if err != nil {
		return fmt.Errorf("setups: unable to start teardown of %s: %w", p.ID, err)
	}
	p.Status = status.Deleting
	return s.Store.MarkProjectDeleting(ctx, p.ID)
}

// EnsureRunning starts the ready project's workspace again if its container stopped, and
// re-hands it its credentials. It returns when the workflow is done (or ctx ends).
func (s *Service) EnsureRunning(ctx context.Context, p *store.Project) error {
	if p.Status != status.Ready {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	run, err := s.Temporal.ExecuteWorkflow(sctx, s.projectRun(p, workflows.EnsureRunningWorkflowID(p.ID), enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING),
		workflows.TypeProjectEnsureRunning, workflows.StepInput{ProjectID: p.ID})
	if err != nil {
		return fmt.Errorf("setups: unable to ensure %s runs: %w", p.ID, err)
	}
	// Waited for, so the caller knows when the workspace is where the database says: a
	// container Docker restarted on new ports has them recorded by then.
	if err := run.Get(ctx, nil); err != nil {
		return fmt.Errorf("setups: ensuring %s runs: %w", p.ID, err)
	}
	return nil
}

// ErrPushRunning means a push or a pull of the project runs already.
var ErrPushRunning = errors.New("setups: a push or pull of the project is running")

// Push starts pushing the project's work as in asks; one push or pull of a project runs at a
// time (ErrPushRunning). It returns once the workflow is started, not done.
func (s *Service) Push(ctx context.Context, p *store.Project, in workflows.PushInput) error {
	return s.startGit(ctx, p, workflows.TypeProjectPush, in)
}

// Pull starts merging the project's base branch into its workspace as in asks, under the
// push's workflow id: a pull and a push never run at once (ErrPushRunning).
func (s *Service) Pull(ctx context.Context, p *store.Project, in workflows.PullInput) error {
	return s.startGit(ctx, p, workflows.TypeProjectPull, in)
}

// startGit starts a git workflow of the project, unless one runs.
func (s *Service) startGit(ctx context.Context, p *store.Project, workflowType string, in any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := s.Temporal.ExecuteWorkflow(ctx, s.projectRun(p, workflows.ProjectPushWorkflowID(p.ID), enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL),
		workflowType, in)
	if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
		return ErrPushRunning
	} else if err != nil {
		return fmt.Errorf("setups: unable to start %s of %s: %w", workflowType, p.ID, err)
	}
	return nil
}

// Disconnect starts taking providerID away from the user everywhere; the connection is gone
// once every project using it has forgotten it.
func (s *Service) Disconnect(ctx context.Context, userID, providerID, requestedBy string) error {
	err := s.startForConnection(ctx, client.StartWorkflowOptions{
		ID:                       workflows.DisconnectWorkflowID(userID, providerID),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
	}, userID, providerID, workflows.TypeProviderDisconnect, workflows.DisconnectInput{UserID: userID, ProviderID: providerID, RequestedBy: requestedBy})
	if err != nil {
		return fmt.Errorf("setups: unable to start disconnecting %s: %w", providerID, err)
	}
	return nil
}

// startForConnection starts a workflow about one user's connection to a provider, findable in
// the Temporal UI by both. o names the run and says what a second start does.
func (s *Service) startForConnection(ctx context.Context, o client.StartWorkflowOptions, userID, providerID, workflowType string, in any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	o.TaskQueue = s.TaskQueue
	o.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	o.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.SAUserID.ValueSet(userID), workflows.SAProviderID.ValueSet(providerID))
	_, err := s.Temporal.ExecuteWorkflow(ctx, o, workflowType, in)
	return err
}

// CountWaiting counts setups waiting for an operator, from Temporal's visibility store.
func (s *Service) CountWaiting(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := s.Temporal.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{
		Namespace: s.Namespace,
		Query:     s.runningSetups(fmt.Sprintf("%s = '%s'", workflows.SASetupState.GetName(), status.SetupWaiting)),
	})
	if err != nil {
		return 0, err
	}
	return resp.GetCount(), nil
}

// Progress asks the run for its step table.
func (s *Service) Progress(ctx context.Context, projectID string) (*workflows.Progress, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := s.Temporal.QueryWorkflow(ctx, workflows.SetupWorkflowID(projectID), "", workflows.QueryProgress)
	if err != nil {
		return nil, err
	}
	var pr workflows.Progress
	if err := v.Get(&pr); err != nil {
		return nil, err
	}
	return &pr, nil
}

// Setup is one setup run as operators see it, read from Temporal's visibility store.
type Setup struct {
	ProjectID   string       `json:"projectId"`
	ProjectName string       `json:"projectName"`
	OwnerUserID string       `json:"ownerUserId"`
	Owner       string       `json:"owner"`
	Host        string       `json:"host,omitempty"` // the Docker host the project is on, once placed
	State       status.Setup `json:"state"`
	Step        string       `json:"step"`
	Reason      string       `json:"reason,omitempty"`
	StartedAt   time.Time    `json:"startedAt"`
	WorkflowID  string       `json:"workflowId"`
	RunID       string       `json:"runId"`
	TemporalURL string       `json:"temporalUrl"`
}

// Age is how long the run has been going.
func (su Setup) Age() time.Duration { return time.Since(su.StartedAt).Round(time.Second) }

// runningSetups is a visibility query for this doce's running setups (its task queue: other
// doce installations may share the namespace) that also meet cond.
func (s *Service) runningSetups(cond string) string {
	return fmt.Sprintf("WorkflowType = '%s' AND TaskQueue = '%s' AND ExecutionStatus = 'Running' AND (%s)",
		workflows.TypeProjectSetup, s.TaskQueue, cond)
}

// ListNeedingAttention lists setups waiting for an operator and setups still running after
// longer than stuckAfter, newest first, at most limit.
func (s *Service) ListNeedingAttention(ctx context.Context, stuckAfter time.Duration, limit int) ([]Setup, error) {
	q := s.runningSetups(fmt.Sprintf("%s = '%s' OR (%s = '%s' AND StartTime < '%s')",
		workflows.SASetupState.GetName(), status.SetupWaiting,
		workflows.SASetupState.GetName(), status.SetupRunning,
		time.Now().Add(-stuckAfter).UTC().Format(time.RFC3339)))
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := s.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Namespace: s.Namespace, Query: q, PageSize: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("setups: unable to list from Temporal visibility: %w", err)
	}
	out := make([]Setup, 0, len(resp.Executions))
	for _, ex := range resp.Executions {
		su := Setup{
			WorkflowID: ex.GetExecution().GetWorkflowId(),
			RunID:      ex.GetExecution().GetRunId(),
			StartedAt:  ex.GetStartTime().AsTime(),
		}
		fields := ex.GetSearchAttributes().GetIndexedFields()
		su.ProjectID = keyword(fields, workflows.SAProjectID.GetName())
		su.OwnerUserID = keyword(fields, workflows.SAUserID.GetName())
		su.State = status.Setup(keyword(fields, workflows.SASetupState.GetName()))
		su.Step = keyword(fields, workflows.SASetupStep.GetName())
		su.TemporalURL = s.RunURL(su.WorkflowID, su.RunID)
		if p, err := s.Store.Project(ctx, su.ProjectID); err == nil {
			su.ProjectName, su.Reason, su.Host = p.Name, p.SetupError, p.Host
		}
		if u, err := s.Store.UserByID(ctx, su.OwnerUserID); err == nil {
			su.Owner = u.Username
		}
		out = append(out, su)
	}
	return out, nil
}

// RunURL is the Temporal UI page of a run.
func (s *Service) RunURL(workflowID, runID string) string {
	if s.UIURL == "" {
		return ""
	}
	u := s.UIURL + "/namespaces/" + url.PathEscape(s.Namespace) + "/workflows/" + url.PathEscape(workflowID)
	if runID != "" {
		u += "/" + url.PathEscape(runID)
	}
	return u
}

func keyword(fields map[string]*commonpb.Payload, name string) string {
	p, ok := fields[name]
	if !ok {
		return ""
	}
	var v string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &v); err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}
