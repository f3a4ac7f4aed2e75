package web

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/store"
)

// modelCatalog is the pinned OpenCode's own model catalog (GET /provider of a running
// workspace), reduced to the providers doce offers and to model ids, names and limits. A
// workspace is hostile code and could answer any catalog it likes, so each user's catalog is read
// from one of their own workspaces and shown to them only: another user's workspace never decides
// which models someone is offered. The answer also holds the workspace's stored keys in plain
// text: it is decoded into types without them and never passed on.
type modelCatalog struct {
	mu     sync.Mutex
	byUser map[string]*userCatalog
}

type userCatalog struct {
	byID     map[string][]ModelView
	lastTry  time.Time
	fetching bool
}

// retryCatalog is how soon a failed catalog read is tried again; maxCatalogs is how many users'
// catalogs are kept (a few kB each; one more forgets another, which is read again when needed).
const (
	retryCatalog = time.Minute
	maxCatalogs  = 1000
)

// models returns a provider's models for userID, and false while their catalog has not been read.
func (mc *modelCatalog) models(userID, providerID string) ([]ModelView, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	uc := mc.byUser[userID]
	if uc == nil || uc.byID == nil {
		return nil, false
	}
	ms, ok := uc.byID[providerID]
	return ms, ok
}

// load reads userID's catalog from oc, a workspace of theirs, unless it was read, or tried lately.
func (mc *modelCatalog) load(ctx context.Context, userID string, oc *opencode.Client) {
	mc.mu.Lock()
	if mc.byUser == nil {
		mc.byUser = map[string]*userCatalog{}
	}
	uc := mc.byUser[userID]
	if uc == nil {
		if len(mc.byUser) >= maxCatalogs {
			for id := range mc.byUser { // any one
				delete(mc.byUser, id)
				break
			}
		}
		uc = &userCatalog{}
		mc.byUser[userID] = uc
	}
	if uc.byID != nil || uc.fetching || time.Since(uc.lastTry) < retryCatalog {
		mc.mu.Unlock()
		return
	}
	uc.fetching, uc.lastTry = true, time.Now()
	mc.mu.Unlock()
	all, err := oc.Catalog(ctx)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	uc.fetching = false
	if err != nil || len(all) == 0 {
		return
	}
	by := map[string][]ModelView{}
	for _, pr := range all {
		if _, known := providers.Lookup(pr.ID); !known {
			continue
		}
		ms := make([]ModelView, 0, len(pr.Models))
		for id, m := range pr.Models {
			if m.ID == "" {
				m.ID = id
			}
			ms = append(ms, ModelView{ID: m.ID, Name: m.Name, Context: int64(m.Limit.Context), Output: int64(m.Limit.Output)})
		}
		slices.SortFunc(ms, func(a, b ModelView) int { return strings.Compare(a.ID, b.ID) })
		by[pr.ID] = ms
	}
	uc.byID = by
}

// providerModelIDs are the model ids offered for a provider: a custom or well-known
// connection's own list, else OpenCode's catalog once read, else doce's built-in suggestions
// (the create-project form can come before any workspace exists).
func (s *Server) providerModelIDs(conn *store.ProviderConnection) []string {
	if ms := conn.Models(); len(ms) > 0 {
		return ms
	}
	if ms, ok := s.catalog.models(conn.UserID, conn.ProviderID); ok && len(ms) > 0 {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		return ids
	}
	prov, _ := providers.Lookup(conn.ProviderID)
	return prov.Models
}

// modelsOf lists the models a project's conversation can switch among.
func (s *Server) modelsOf(c *gin.Context, p *store.Project) ([]ModelView, error) {
	conn, err := s.Store.Connection(c.Request.Context(), p.OwnerUserID, p.ProviderID)
	if err != nil && err != store.ErrNotFound {
		return nil, err
	}
	if conn != nil && len(conn.Models()) > 0 {
		out := make([]ModelView, 0)
		for _, id := range conn.Models() {
			out = append(out, ModelView{ID: id, Name: id})
		}
		return out, nil
	}
	if _, ok := s.catalog.models(p.OwnerUserID, p.ProviderID); !ok {
		ph := s.hub.acquire(p.ID)
		if oc, err := ph.ready(c.Request.Context()); err == nil {
			s.catalog.load(c.Request.Context(), p.OwnerUserID, oc)
		}
		ph.release()
	}
	if ms, ok := s.catalog.models(p.OwnerUserID, p.ProviderID); ok {
		return ms, nil
	}
	prov, _ := providers.Lookup(p.ProviderID)
	out := make([]ModelView, 0, len(prov.Models))
	for _, id := range prov.Models {
		out = append(out, ModelView{ID: id, Name: id})
	}
	return out, nil
}
