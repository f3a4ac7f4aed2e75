package web

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// HostView is a host as the ops page and API show it.
type HostView struct {
	store.HostLoad
	State string `json:"state"`
	// Capacity is how many workspaces it holds; 0: no limit.
	Capacity int `json:"capacity"`
	// Since is how long ago its last heartbeat was, for people.
	Since string `json:"-"`
}

func (s *Server) hostViews(ctx context.Context) ([]HostView, error) {
	if s.Hosts == nil {
		return []HostView{}, nil
	}
	list, err := s.Hosts.List(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	views := make([]HostView, 0, len(list))
	for _, h := range list {
		views = append(views, HostView{HostLoad: h, State: h.State(now), Capacity: max(h.Capacity(), 0),
			Since: now.Sub(h.HeartbeatAt).Round(time.Second).String() + " ago"})
	}
	return views, nil
}

func (s *Server) apiOpsHosts(c *gin.Context) {
	views, err := s.hostViews(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"hosts": views})
}

// drainHost stops placing new workspaces on a host, from the ops page or the API.
func (s *Server) drainHost(c *gin.Context) { s.setHostDrained(c, true) }

// undrainHost places new workspaces on a drained host again.
func (s *Server) undrainHost(c *gin.Context) { s.setHostDrained(c, false) }

func (s *Server) setHostDrained(c *gin.Context, drained bool) {
	ctx := c.Request.Context()
	name := c.Param("name")
	err := s.Store.SetHostDrained(ctx, name, drained)
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, httperr.NotFound("host"))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	action := "host.undrain"
	if drained {
		action = "host.drain"
	}
	if err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: action, TargetType: "host", TargetID: name}); err != nil {
		s.Log.Warn("unable to record the audit event", "error", err)
	}
	if s.Hosts != nil {
		s.Hosts.Refresh()
	}
	if isAPI(c) {
		c.JSON(http.StatusOK, gin.H{"host": name, "drained": drained})
		return
	}
	c.Redirect(http.StatusSeeOther, "/ops#hosts")
}
