package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	units "github.com/docker/go-units"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

const hostsUsage = `Usage:
  doce hosts list           the Docker hosts: state, workspaces held and capacity, last heartbeat
  doce hosts drain NAME     take no new projects on host NAME; its projects keep working
  doce hosts undrain NAME   let host NAME take new projects again
`

// runHosts is `doce hosts`: the Docker hosts workers serve, and draining one.
func runHosts(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, hostsUsage)
		return errors.New("hosts: name one subcommand")
	}
	st, err := openCurrentStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	switch {
	case args[0] == "list" && len(args) == 1:
		hosts, err := st.Hosts(ctx)
		if err != nil {
			return err
		}
		if len(hosts) == 0 {
			fmt.Println("no Docker host is registered: each `doce worker` registers the one it serves (DOCE_HOST_NAME)")
			return nil
		}
		now := time.Now()
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tPROJECTS\tPOOLED\tCAPACITY\tLAST HEARTBEAT\tTASK QUEUE\tDOCKER\tADDRESS")
		for _, h := range hosts {
			capacity := "no limit"
			if c := h.Capacity(); c != 0 {
				capacity = strconv.Itoa(max(c, 0))
			}
			if h.MemoryBytes > 0 {
				capacity += " (" + units.BytesSize(float64(h.MemoryBytes)) + ")"
			}
			docker := h.DockerHost
			if docker == "" {
				docker = "(default socket)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s ago\t%s\t%s\t%s\n", h.Name, h.State(now), h.Projects, h.Pooled, capacity,
				now.Sub(h.HeartbeatAt).Round(time.Second), h.TaskQueue, docker, h.Address)
		}
		return tw.Flush()
	case (args[0] == "drain" || args[0] == "undrain") && len(args) == 2:
		drain := args[0] == "drain"
		if err := st.SetHostDrained(ctx, args[1], drain); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("hosts: no host is called %q (doce hosts list names them)", args[1])
		} else if err != nil {
			return err
		}
		if err := st.Audit(ctx, nil, store.AuditEvent{ActorID: "cli", Action: "host." + args[0], TargetType: "host", TargetID: args[1]}); err != nil {
			log.Warn("unable to record the audit event", "error", err)
		}
		if drain {
			fmt.Printf("host %s drained: it takes no new projects (its pooled workspaces go); its projects keep working\n", args[1])
		} else {
			fmt.Printf("host %s undrained: it takes new projects again\n", args[1])
		}
		return nil
	default:
		fmt.Fprint(os.Stderr, hostsUsage)
		return fmt.Errorf("hosts: unknown subcommand %q", strings.Join(args, " "))
	}
}

// registerHost records the Docker host this worker serves (DOCKER_HOST, under DOCE_HOST_NAME)
// and returns its queue. When it is the only host, it adopts the projects made before hosts.
// The host holds at most DOCE_HOST_MAX_WORKSPACES, and never more workspaces than its engine's
// address pools have networks for: a full pool refuses new projects a place, rather than
// failing their setups.
func registerHost(ctx context.Context, cfg *config.Config, st *store.Store, ws *workspace.Manager, log *slog.Logger) (workflows.HostQueue, error) {
	hq := workflows.HostQueue{Host: cfg.HostName, TaskQueue: workflows.HostTaskQueue(cfg.TaskQueue, cfg.HostName)}
	limit := cfg.HostMaxWorkspaces
	room, err := ws.NetworkRoom(ctx)
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
	err = st.RegisterHost(ctx, &store.Host{
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

// beatHost records the host's heartbeat every DOCE_HOST_HEARTBEAT while its Docker engine
// answers, and checks the workspace firewall, until ctx ends; then it records the host stopped,
// so nothing more is placed on it.
func beatHost(ctx context.Context, st *store.Store, ws *workspace.Manager, eg *workspaceEgress, cfg *config.Config, log *slog.Logger) {
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
		if err := eg.check(); err != nil {
			log.Error("unable to put the workspace firewall back", "error", err)
		}
		bctx, cancel := context.WithTimeout(ctx, max(cfg.HostHeartbeat, 5*time.Second))
		err := ws.Ping(bctx)
		if err == nil {
			err = st.HostHeartbeat(bctx, cfg.HostName)
		}
		cancel()
		if errors.Is(err, store.ErrNotFound) { // its row was removed: register again
			_, err = registerHost(ctx, cfg, st, ws, log)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("host heartbeat missed", "host", cfg.HostName, "error", err)
		}
	}
}
