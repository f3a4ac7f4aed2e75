package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// defaultStuckAfter is how long a setup may run before the ops page lists it.
const defaultStuckAfter = 15 * time.Minute

// requireAdmin keeps the ops pages to administrators.
func (s *Server) requireAdmin(c *gin.Context) {
	if u := currentUser(c); u == nil || u.Role != store.RoleAdmin {
		s.fail(c, httperr.New(http.StatusForbidden, "forbidden", "Only administrators can see operations."))
	}
}

func (s *Server) stuckAfter() time.Duration {
	if s.StuckAfter > 0 {
		return s.StuckAfter
	}
	return defaultStuckAfter
}

// needingAttention is the setups the ops page lists, at most a second old.
func (s *Server) needingAttention(ctx context.Context) ([]setups.Setup, error) {
	return s.attention.Get(context.WithoutCancel(ctx), struct{}{}, otter.LoaderFunc[struct{}, []setups.Setup](
		func(ctx context.Context, _ struct{}) ([]setups.Setup, error) {
			return s.Setups.ListNeedingAttention(ctx, s.stuckAfter(), 200)
		}))
}

func (s *Server) opsPage(c *gin.Context) {
	list, err := s.needingAttention(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	audit, err := s.Store.AuditEvents(c.Request.Context(), 50)
	if err != nil {
		s.fail(c, err)
		return
	}
	key, err := s.Secrets.Info(c.Request.Context())
	if err != nil {
		s.Log.Warn("unable to read the transit key", "error", err)
	}
	hosts, err := s.hostViews(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	var nodes []workspace.Node
	if s.Nodes != nil {
		if nodes, err = s.Nodes.Nodes(c.Request.Context()); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.render(c, http.StatusOK, "ops.html", gin.H{
		"Title": "Operations", "Setups": list, "StuckAfter": s.stuckAfter(), "Audit": audit, "Key": key,
		"Done": c.Query("done"), "Failed": c.Query("failed"), "Hosts": hosts, "Cluster": s.Nodes != nil, "Nodes": nodes,
	})
}

func (s *Server) apiOpsSetups(c *gin.Context) {
	list, err := s.needingAttention(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"setups": list, "stuckAfter": s.stuckAfter().String()})
}

// OpsActionInput names the projects an operator acts on.
type OpsActionInput struct {
	ProjectIDs []string `json:"projectIds" form:"projectId"`
}

// OpsResult says what happened to each project of a bulk action.
type OpsResult struct {
	ProjectID string `json:"projectId"`
	OK        bool   `json:"ok"`
	Message   string `json:"message,omitempty"`
}

// opsAct retries or cancels each named setup, whoever owns it.
func (s *Server) opsAct(c *gin.Context, in OpsActionInput, op setups.Operation) []OpsResult {
	ctx := c.Request.Context()
	defer s.attention.InvalidateAll() // the next list shows what the action changed
	var out []OpsResult
	for _, id := range in.ProjectIDs {
		p, err := s.Setups.Operate(ctx, id, op, currentUser(c).ID)
		r := OpsResult{ProjectID: id, OK: err == nil}
		switch {
		case err == nil:
		case errors.Is(err, store.ErrNotFound):
			r.Message = "No such project."
		default:
			r.Message = s.shown(c, setupError(err, p)).Message
		}
		out = append(out, r)
	}
	return out
}

func (s *Server) opsSubmit(op setups.Operation) gin.HandlerFunc {
	return func(c *gin.Context) {
		var in OpsActionInput
		if isAPI(c) {
			if !bindJSON(c, s, &in) {
				return
			}
		} else {
			_ = c.ShouldBind(&in)
		}
		if len(in.ProjectIDs) == 0 {
			s.fail(c, httperr.Invalid("projectIds", "Select at least one setup."))
			return
		}
		if len(in.ProjectIDs) > 200 {
			s.fail(c, httperr.Invalid("projectIds", "Act on at most 200 setups at once."))
			return
		}
		results := s.opsAct(c, in, op)
		if isAPI(c) {
			c.JSON(http.StatusOK, gin.H{"results": results})
			return
		}
		var done, failed []string
		for _, r := range results {
			if r.OK {
				done = append(done, r.ProjectID)
			} else {
				failed = append(failed, r.ProjectID+": "+r.Message)
			}
		}
		q := "?done=" + strconv.Itoa(len(done))
		if len(failed) > 0 {
			q += "&failed=" + url.QueryEscape(strings.Join(failed, "; "))
		}
		c.Redirect(http.StatusSeeOther, "/ops"+q)
	}
}
