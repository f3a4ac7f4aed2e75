package activities

import (
	"context"
	"errors"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Connections changes provider connections for workflows.
type Connections struct {
	Store *store.Store
}

// MarkRevoked stops a connection being used by new setups while it is being disconnected.
func (a *Connections) MarkRevoked(ctx context.Context, in workflows.DisconnectInput) error {
	err := a.Store.SetConnectionStatus(ctx, in.UserID, in.ProviderID, store.ConnRevoked)
	if errors.Is(err, store.ErrNotFound) {
		return nil // already gone: a re-run after the delete
	}
	return err
}

// ProjectsUsing lists the user's live projects set up with the provider.
func (a *Connections) ProjectsUsing(ctx context.Context, in workflows.DisconnectInput) ([]string, error) {
	ps, err := a.Store.ProjectsUsingProvider(ctx, in.UserID, in.ProviderID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	return ids, nil
}

// Delete removes the connection row.
func (a *Connections) Delete(ctx context.Context, in workflows.DisconnectInput) error {
	return a.Store.DeleteConnection(ctx, in.UserID, in.ProviderID, in.RequestedBy)
}
