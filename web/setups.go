package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// errNotWaiting is the answer to retry or cancel when the setup is not stopped at a step.
var errNotWaiting = &Error{Status: http.StatusConflict, Code: "not_waiting",
	Message: "This setup is not waiting for an operator: only a setup stopped at a failed step can be retried or cancelled."}

// retrySetup resumes a failed setup at its failed step. A run still waiting gets the retry
// signal; a run that gave up is started again under the same workflow id.
func (s *Server) retrySetup(ctx context.Context, p *store.Project, u *store.User) error {
	if p.Status != store.ProjectFailed {
		return errNotWaiting
	}
	err := s.signalSetup(ctx, p, workflows.SignalRetry)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		err = s.startSetup(ctx, p, u)
	}
	if err != nil {
		return err
	}
	p.Status, p.SetupError = store.ProjectSettingUp, ""
	return s.Store.UpdateProject(ctx, p, "status", "setup_error")
}

// cancelSetup tears down a setup stopped at a failed step.
func (s *Server) cancelSetup(ctx context.Context, p *store.Project) error {
	if p.Status != store.ProjectFailed {
		return errNotWaiting
	}
	err := s.signalSetup(ctx, p, workflows.SignalCancel)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return errNotWaiting
	}
	return err
}

func (s *Server) signalSetup(ctx context.Context, p *store.Project, signal string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.Temporal.SignalWorkflow(ctx, workflows.SetupWorkflowID(p.ID), "", signal, nil)
}

// deleteProject starts the project's teardown; the row is gone once it completes.
func (s *Server) deleteProject(ctx context.Context, p *store.Project, u *store.User) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       workflows.TeardownWorkflowID(p.ID),
		TaskQueue:                s.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		Memo:                     map[string]any{"project": p.Name},
	}, "ProjectTeardown", workflows.TeardownInput{ProjectID: p.ID, RequestedBy: u.ID})
	if err != nil {
		return err
	}
	p.Status = store.ProjectDeleting
	return s.Store.UpdateProject(ctx, p, "status")
}

// projectAction runs one of the actions above on the caller's own project.
func (s *Server) projectAction(action func(*Server, *gin.Context, *store.Project) error, apiStatus int) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, ok := s.ownProject(c)
		if !ok {
			return
		}
		if err := action(s, c, p); err != nil {
			s.fail(c, err)
			return
		}
		if isAPI(c) {
			c.JSON(apiStatus, gin.H{"project": s.projectView(p)})
			return
		}
		if p.Status == store.ProjectDeleting {
			c.Redirect(http.StatusSeeOther, "/projects")
			return
		}
		c.Redirect(http.StatusSeeOther, "/projects/"+p.ID)
	}
}

func retryAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.retrySetup(c.Request.Context(), p, currentUser(c))
}

func cancelAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.cancelSetup(c.Request.Context(), p)
}

func deleteAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.deleteProject(c.Request.Context(), p, currentUser(c))
}
