package web

import (
	"errors"
	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/store"
)

// catalogModels is a provider's models from userID's catalog (read from a workspace of
// theirs), as the API shows them.
func (s *Server) catalogModels(userID, providerID string) ([]ModelView, bool) {
	ms, ok := s.Catalog.Models(userID, providerID)
	if !ok {
		return nil, false
	}
	out := make([]ModelView, len(ms))
	for i, m := range ms {
		out[i] = ModelView{ID: m.ID, Name: m.Name, Context: m.Context, Output: m.Output}
	}
	return out, true
}

// modelsOf lists the models a project's conversation can switch among.
func (s *Server) modelsOf(c *gin.Context, p *store.Project) ([]ModelView, error) {
	conn, err := s.Store.Connection(c.Request.Context(), p.OwnerUserID, p.ProviderID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if conn != nil && len(conn.Models()) > 0 {
		out := make([]ModelView, 0)
		for _, id := range conn.Models() {
			out = append(out, ModelView{ID: id, Name: id})
		}
		return out, nil
	}
	if _, ok := s.catalogModels(p.OwnerUserID, p.ProviderID); !ok {
		ph := s.events.Acquire(p.ID)
		if oc, err := ph.Ready(c.Request.Context()); err == nil {
			s.Catalog.Load(c.Request.Context(), p.OwnerUserID, oc)
		}
		ph.Release()
	}
	if ms, ok := s.catalogModels(p.OwnerUserID, p.ProviderID); ok {
		return ms, nil
	}
	prov, _ := providers.Lookup(p.ProviderID)
	out := make([]ModelView, 0, len(prov.Models))
	for _, id := range prov.Models {
		out = append(out, ModelView{ID: id, Name: id})
	}
	return out, nil
}
