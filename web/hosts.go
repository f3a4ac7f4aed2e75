package web

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// hostsMaxAge is how old the web tier's list of hosts may be. A host goes unreachable after
// three missed heartbeats, so a second more is nothing; every page view asking the database
// would be.
const hostsMaxAge = time.Second

// Hosts is the web tier's view of the Docker hosts the workers registered: where each one's
// workspace ports are reached, whether its worker is there, and its engine for downloads. It
// reads the hosts table at most once per hostsMaxAge, however many requests ask.
type Hosts struct {
	Store *store.Store
	// Own is the engine of this process's DOCKER_HOST: projects without a host, and hosts
	// registered with the default socket, are read through it.
	Own *workspace.Manager

	mu       sync.Mutex
	at       time.Time
	list     []store.HostLoad
	flight   singleflight.Group
	managers map[string]*workspace.Manager // by the engine's endpoint
}

// List returns every host with its load, at most hostsMaxAge old.
func (h *Hosts) List(ctx context.Context) ([]store.HostLoad, error) {
	h.mu.Lock()
	if time.Since(h.at) < hostsMaxAge {
		list := h.list
		h.mu.Unlock()
		return list, nil
	}
	h.mu.Unlock()
	v, err, _ := h.flight.Do("", func() (any, error) {
		list, err := h.Store.Hosts(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.at, h.list = time.Now(), list
		h.mu.Unlock()
		return list, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]store.HostLoad), nil
}

// refresh makes the next List read the database: an operator's drain shows at once.
func (h *Hosts) refresh() {
	h.mu.Lock()
	h.at = time.Time{}
	h.mu.Unlock()
}

// host is the named host; false when it is not registered or the list cannot be read.
func (h *Hosts) host(ctx context.Context, name string) (*store.HostLoad, bool) {
	list, err := h.List(ctx)
	if err != nil {
		return nil, false
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i], true
		}
	}
	return nil, false
}

// Address is where host's workspace ports are reached (agent.Connector.Addresses); "" when it
// is not known, for the caller's default.
func (h *Hosts) Address(ctx context.Context, name string) string {
	if l, ok := h.host(ctx, name); ok {
		return l.Address
	}
	return ""
}

// State is the host's state (store.HostReady, HostDrained, HostUnreachable); "" when the
// project has no host or it is not known.
func (h *Hosts) State(ctx context.Context, name string) string {
	if name == "" {
		return ""
	}
	list, err := h.List(ctx)
	if err != nil {
		return ""
	}
	for i := range list {
		if list[i].Name == name {
			return list[i].State(time.Now())
		}
	}
	return store.HostUnreachable // placed on a host whose row is gone: nothing serves it
}

// Workspace is the Docker engine of the named host, for reading a project's files.
func (h *Hosts) Workspace(ctx context.Context, name string) (*workspace.Manager, error) {
	endpoint := ""
	if name != "" {
		l, ok := h.host(ctx, name)
		if !ok {
			return nil, errors.New("web: the project's host " + name + " is not registered")
		}
		endpoint = l.DockerHost
	}
	if endpoint == "" {
		if h.Own == nil {
			return nil, errors.New("web: no Docker engine to read workspaces through")
		}
		return h.Own, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if m, ok := h.managers[endpoint]; ok {
		return m, nil
	}
	m, err := workspace.NewManagerAt(endpoint, "")
	if err != nil {
		return nil, err
	}
	if h.managers == nil {
		h.managers = map[string]*workspace.Manager{}
	}
	h.managers[endpoint] = m
	return m, nil
}

// Close closes the engines opened for other hosts.
func (h *Hosts) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.managers {
		m.Close()
	}
	h.managers = nil
}

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

// hostDrainSubmit drains (or undrains) a host, from the ops page or the API.
func (s *Server) hostDrainSubmit(drain bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		name := c.Param("name")
		err := s.Store.SetHostDrained(ctx, name, drain)
		if errors.Is(err, store.ErrNotFound) {
			s.fail(c, errNotFound("host"))
			return
		} else if err != nil {
			s.fail(c, err)
			return
		}
		action := "host.undrain"
		if drain {
			action = "host.drain"
		}
		if err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: action, TargetType: "host", TargetID: name}); err != nil {
			s.Log.Warn("unable to record the audit event", "error", err)
		}
		if s.Hosts != nil {
			s.Hosts.refresh()
		}
		if isAPI(c) {
			c.JSON(http.StatusOK, gin.H{"host": name, "drained": drain})
			return
		}
		c.Redirect(http.StatusSeeOther, "/ops#hosts")
	}
}
