package web

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
)

var errNotWaiting = httperr.New(http.StatusConflict, "not_waiting",
	"This setup is not waiting for an operator: only a setup stopped at a failed step can be retried or cancelled.")

// setupError turns the setups package's refusals into answers a person can act on.
func setupError(err error, p *store.Project) error {
	switch {
	case errors.Is(err, setups.ErrNotWaiting):
		return errNotWaiting
	case errors.Is(err, setups.ErrWrongState):
		return errWrongState(p.Status)
	case errors.Is(err, setups.ErrNoAnswer):
		return httperr.New(http.StatusServiceUnavailable, "setup_not_answering",
			"The setup did not answer in time: no worker is running it now. Try again in a minute.")

	}
	return err
}

// errWrongState says why a stop or start cannot begin from the project's status.
func errWrongState(s status.Project) *httperr.Error {
	msg := "The workspace cannot be stopped or started while the project is " + string(s) + "."
	switch s {
	case status.Ready:
		msg = "The workspace is already running. Stop it first."
	case status.Stopped:
		msg = "The workspace is already stopped. Start it to use it."
	case status.Stopping:
		msg = "The workspace is stopping. Start it once it has stopped."
	case status.Starting:
		msg = "The workspace is starting. Stop it once it is ready."
	case status.Pending, status.SettingUp:
		msg = "The project is still being set up. Stop or start it once it is ready."
	case status.SetupFailed:
		msg = "The project's setup failed. Retry the setup first."
	case status.Deleting, status.Deleted, status.Cancelled:
		msg = "The project is " + string(s) + "; it has no workspace to stop or start."
	}
	return httperr.New(http.StatusConflict, "wrong_state", msg)
}

// projectAction runs one of the actions below on the request's project. The API answers 202:
// the action goes on in its workflow.
func (s *Server) projectAction(action func(*Server, *gin.Context, *store.Project) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		p := project(c)
		if err := action(s, c, p); err != nil {
			s.fail(c, setupError(err, p))
			return
		}
		if isAPI(c) {
			c.JSON(http.StatusAccepted, gin.H{"project": s.projectView(c, p)})
			return
		}
		if p.Status == status.Deleting {
			c.Redirect(http.StatusSeeOther, "/projects")
			return
		}
		c.Redirect(http.StatusSeeOther, "/projects/"+p.ID)
	}
}

func retryAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.Setups.Retry(c.Request.Context(), p, currentUser(c).ID)
}

func cancelAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.Setups.Cancel(c.Request.Context(), p)
}

func deleteAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.Setups.Delete(c.Request.Context(), p, currentUser(c).ID)
}

func stopAction(s *Server, c *gin.Context, p *store.Project) error {
	return s.Setups.StopWorkspace(c.Request.Context(), p, currentUser(c).ID)
}

func startAction(s *Server, c *gin.Context, p *store.Project) error {
	if p.Status == status.Stopped {
		if err := s.projects.CheckStart(c.Request.Context(), p.OwnerUserID); err != nil {
			return err
		}
	}
	return s.Setups.StartWorkspace(c.Request.Context(), p, currentUser(c).ID)
}
