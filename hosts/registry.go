// Package hosts is doce's Docker hosts: a worker registers the host it serves and beats its
// heartbeat (Register, Beat); the web tier reads them through a Registry.
package hosts

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// maxAge is how old the web tier's list of hosts may be. A host goes unreachable after
// three missed heartbeats, so a second more is nothing; every page view asking the database
// would be.
const maxAge = time.Second

// Registry is the web tier's view of the Docker hosts the workers registered: where each one's
// workspace ports are reached, whether its worker is there, and its engine for downloads. It
// reads the hosts table at most once per maxAge, however many requests ask.
type Registry struct {
	Store *store.Store
	// Own is this process's backend (the engine of its DOCKER_HOST, or its cluster): projects
	// without a host, and hosts registered with the default socket, are read through it.
	Own workspace.Backend

	list     *otter.Cache[struct{}, []store.HostLoad]
	mu       sync.Mutex
	managers map[string]*workspace.Manager // by the engine's endpoint
}

// NewRegistry returns the registry of the hosts in st; own is the engine of this process's
// DOCKER_HOST (nil when it has none).
func NewRegistry(st *store.Store, own workspace.Backend) *Registry {
	return &Registry{Store: st, Own: own, list: otter.Must(&otter.Options[struct{}, []store.HostLoad]{
		ExpiryCalculator: otter.ExpiryWriting[struct{}, []store.HostLoad](maxAge),
	})}
}

// List returns every host with its load, at most maxAge old.
func (h *Registry) List(ctx context.Context) ([]store.HostLoad, error) {
	return h.list.Get(context.WithoutCancel(ctx), struct{}{}, otter.LoaderFunc[struct{}, []store.HostLoad](
		func(ctx context.Context, _ struct{}) ([]store.HostLoad, error) { return h.Store.Hosts(ctx) }))
}

// Refresh makes the next List read the database: an operator's drain shows at once.
func (h *Registry) Refresh() { h.list.InvalidateAll() }

// host is the named host; false when it is not registered or the list cannot be read.
func (h *Registry) host(ctx context.Context, name string) (*store.HostLoad, bool) {
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
func (h *Registry) Address(ctx context.Context, name string) string {
	if l, ok := h.host(ctx, name); ok {
		return l.Address
	}
	return ""
}

// State is the host's state (store.HostReady, HostDrained, HostUnreachable); "" when the
// project has no host or it is not known.
func (h *Registry) State(ctx context.Context, name string) string {
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
func (h *Registry) Workspace(ctx context.Context, name string) (workspace.Backend, error) {
	endpoint := ""
	if name != "" {
		l, ok := h.host(ctx, name)
		if !ok {
			return nil, errors.New("hosts: the project's host " + name + " is not registered")
		}
		endpoint = l.DockerHost
	}
	if endpoint == "" {
		if h.Own == nil {
			return nil, errors.New("hosts: no Docker engine to read workspaces through")
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
func (h *Registry) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.managers {
		m.Close()
	}
	h.managers = nil
}
