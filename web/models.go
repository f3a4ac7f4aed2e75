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
// workspace), reduced to the providers doce offers and to model ids, names and limits. Every
// workspace runs the same pinned OpenCode, so one read serves the whole process. The answer
// also holds the workspace's stored keys in plain text: it is decoded into types without them
// and never passed on.
type modelCatalog struct {
	mu       sync.Mutex
	byID     map[string][]ModelView
	lastTry  time.Time
	fetching bool
}

// retryCatalog is how soon a failed catalog read is tried again.
const retryCatalog = time.Minute

// models returns a provider's models, and false while the catalog has not been read.
func (mc *modelCatalog) models(providerID string) ([]ModelView, bool) {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	if mc.byID == nil {
		return nil, false
	}
	ms, ok := mc.byID[providerID]
	return ms, ok
}

// load reads the catalog from oc unless it was read, or tried lately.
func (mc *modelCatalog) load(ctx context.Context, oc *opencode.Client) {
	mc.mu.Lock()
	if mc.byID != nil || mc.fetching || time.Since(mc.lastTry) < retryCatalog {
		mc.mu.Unlock()
		return
	}
	mc.fetching, mc.lastTry = true, time.Now()
	mc.mu.Unlock()
	all, err := oc.Catalog(ctx)
	mc.mu.Lock()
	defer mc.mu.Unlock()
	mc.fetching = false
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
	mc.byID = by
}

// providerModelIDs are the model ids offered for a provider: a custom or well-known
// connection's own list, else OpenCode's catalog once read, else doce's built-in suggestions
// (the create-project form can come before any workspace exists).
func (s *Server) providerModelIDs(conn *store.ProviderConnection) []string {
	if ms := conn.Models(); len(ms) > 0 {
		return ms
	}
	if ms, ok := s.catalog.models(conn.ProviderID); ok && len(ms) > 0 {
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
	if _, ok := s.catalog.models(p.ProviderID); !ok {
		ph := s.hub.acquire(p.ID)
		if oc, err := ph.ready(c.Request.Context()); err == nil {
			s.catalog.load(c.Request.Context(), oc)
		}
		ph.release()
	}
	if ms, ok := s.catalog.models(p.ProviderID); ok {
		return ms, nil
	}
	prov, _ := providers.Lookup(p.ProviderID)
	out := make([]ModelView, 0, len(prov.Models))
	for _, id := range prov.Models {
		out = append(out, ModelView{ID: id, Name: id})
	}
	return out, nil
}
