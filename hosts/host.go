package hosts

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// Register records the Docker host this worker serves (DOCKER_HOST, under DOCE_HOST_NAME)
// and returns its queue. When it is the only host, it adopts the projects made before hosts.
// The host holds at most DOCE_HOST_MAX_WORKSPACES, and never more workspaces than its engine's
// address pools have networks for: a full pool refuses new projects a place, rather than
// failing their setups.
func Register(ctx context.Context, cfg *config.Config, st *store.Store, ws workspace.Backend, log *slog.Logger) (workflows.HostQueue, error) {
	hq := workflows.HostQueue{Host: cfg.HostName, TaskQueue: workflows.HostTaskQueue(cfg.TaskQueue, cfg.HostName)}
	limit := cfg.HostMaxWorkspaces
	if nr, ok := ws.(networkRoomer); ok {
		room, err := nr.NetworkRoom(ctx)
		if err != nil {
			return hq, err
		}
		if limit == 0 || room < limit {
			limit = room
			if room == 0 {
				limit = -1 // room for none (0 would mean no limit)
			}
			log.Info("the engine's address pools bound the host's workspaces", "host", hq.Host, "networks", room)
		}
	}
	err := st.RegisterHost(ctx, &store.Host{
		Name: hq.Host, TaskQueue: hq.TaskQueue, DockerHost: os.Getenv("DOCKER_HOST"), Address: cfg.WorkspaceHost,
		MaxWorkspaces: limit, MemoryBytes: cfg.HostMemory, WorkspaceMemoryBytes: cfg.WorkspaceMemory,
		HeartbeatSeconds: int(max(cfg.HostHeartbeat/time.Second, 1)),
	})
	if err != nil {
		return hq, err
	}
	if n, err := st.AdoptHostless(ctx, hq.Host); err != nil {
		log.Warn("unable to adopt the projects made before hosts", "error", err)
	} else if n > 0 {
		log.Info("adopted the projects made before hosts", "host", hq.Host, "projects", n)
	}
	return hq, nil
}

// networkRoomer is a backend whose workspaces each take a network from a bounded address pool:
// Docker's (workspace.Manager). A cluster's pods take no network of their own.
type networkRoomer interface {
	NetworkRoom(ctx context.Context) (int, error)
}

// Beat records the host's heartbeat every DOCE_HOST_HEARTBEAT while its Docker engine
// answers, and runs check (the workspace firewall's), until ctx ends; then it records the host stopped,
// so nothing more is placed on it.
func Beat(ctx context.Context, cfg *config.Config, st *store.Store, ws workspace.Backend, check func() error, log *slog.Logger) {
	t := time.NewTicker(cfg.HostHeartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := st.HostStopped(sctx, cfg.HostName); err != nil {
				log.Warn("unable to record the host stopped", "host", cfg.HostName, "error", err)
			}
			return
		case <-t.C:
		}
		if err := check(); err != nil {
			log.Error("unable to put the workspace firewall back", "error", err)
		}
		bctx, cancel := context.WithTimeout(ctx, max(cfg.HostHeartbeat, 5*time.Second))
		err := ws.Ping(bctx)
		if err == nil {
			err = st.HostHeartbeat(bctx, cfg.HostName)
		}
		cancel()
		if errors.Is(err, store.ErrNotFound) { // its row was removed: register again
			_, err = Register(ctx, cfg, st, ws, log)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("host heartbeat missed", "host", cfg.HostName, "error", err)
		}
	}
}
