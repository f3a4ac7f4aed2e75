package web

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// NodeCordoner is the cluster of the Kubernetes backend, as the ops page sees it: placement is
// the scheduler's, so cordoning a node is what draining a Docker host is on that backend.
type NodeCordoner interface {
	Nodes(ctx context.Context) ([]workspace.Node, error)
	Cordon(ctx context.Context, name string, cordoned bool) error
}

var errNoCluster = httperr.New(http.StatusNotFound, "no_cluster",
	"This doce runs its workspaces on Docker: it has hosts to drain, not nodes to cordon.")

func (s *Server) apiOpsNodes(c *gin.Context) {
	if s.Nodes == nil {
		s.fail(c, errNoCluster)
		return
	}
	nodes, err := s.Nodes.Nodes(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"nodes": nodes})
}

// cordonNode stops the scheduler placing new workspaces on a node, from the ops page or the API.
func (s *Server) cordonNode(c *gin.Context) { s.setCordoned(c, true) }

// uncordonNode lets the scheduler place workspaces on a node again.
func (s *Server) uncordonNode(c *gin.Context) { s.setCordoned(c, false) }

func (s *Server) setCordoned(c *gin.Context, cordoned bool) {
	if s.Nodes == nil {
		s.fail(c, errNoCluster)
		return
	}
	ctx := c.Request.Context()
	name := c.Param("name")
	if err := s.Nodes.Cordon(ctx, name, cordoned); errors.Is(err, workspace.ErrNoNode) {
		s.fail(c, httperr.NotFound("node"))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	action := "node.uncordon"
	if cordoned {
		action = "node.cordon"
	}
	if err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: action, TargetType: "node", TargetID: name}); err != nil {
		s.Log.Warn("unable to record the audit event", "error", err)
	}
	if isAPI(c) {
		c.JSON(http.StatusOK, gin.H{"node": name, "cordoned": cordoned})
		return
	}
	c.Redirect(http.StatusSeeOther, "/ops#nodes")
}
