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
