package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/store"
)

const poolUsage = `Usage:
  doce pool status         the prebuilt workspaces: size, free, starting, failed, each one's host and age
  doce pool drain [HOST]   remove every unclaimed workspace and keep the pool empty (before an upgrade),
                           on every host or on HOST
  doce pool refill [HOST]  undo a drain: start workspaces up to DOCE_WORKSPACE_POOL now
`

// runPool is `doce pool`: the workspace pool's state and its operator actions.
func runPool(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 || len(args) > 2 || (args[0] == "status" && len(args) > 1) {
		fmt.Fprint(os.Stderr, poolUsage)
		return errors.New("pool: name one subcommand")
	}
	switch args[0] {
	case "status":
		st, err := openStore(cfg)
		if err != nil {
			return err
		}
		defer st.Close()
		ws, err := st.PoolWorkspaces(ctx)
		if err != nil {
			return err
		}
		n := map[string]int{}
		for _, w := range ws {
			n[w.Status]++
		}
		fmt.Printf("size %d per host  free %d  starting %d  failed %d\n", cfg.PoolSize, n[store.PoolFree], n[store.PoolStarting], n[store.PoolFailed])
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tHOST\tSTATUS\tIMAGE\tAGE\tERROR")
		for _, w := range ws {
			host := w.Host
			if host == "" {
				host = "(before hosts)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", w.ID, host, w.Status, w.Image, time.Since(w.CreatedAt).Round(time.Second), w.Error)
		}
		return tw.Flush()
	case "drain", "refill":
		st, err := store.Open(cfg.DBPath)
		if err != nil {
			return err
		}
		defer st.Close()
		hosts, err := st.Hosts(ctx)
		if err != nil {
			return err
		}
		var queues []string
		for _, h := range hosts {
			if len(args) == 1 || h.Name == args[1] {
				queues = append(queues, h.TaskQueue)
			}
		}
		if len(args) == 2 && len(queues) == 0 {
			return fmt.Errorf("pool %s: no host is called %q (doce hosts list names them)", args[0], args[1])
		}
		tc, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: tlog.NewStructuredLogger(log)})
		if err != nil {
			return fmt.Errorf("unable to reach Temporal at %s: %w", cfg.TemporalAddress, err)
		}
		defer tc.Close()
		svc := newSetups(cfg, tc, st)
		act := svc.DrainPool
		if args[0] == "refill" {
			act = svc.RefillPool
		}
		for _, q := range queues {
			if err := act(ctx, q); err != nil {
				return fmt.Errorf("pool %s: the pool of %s is not running (is its worker up with DOCE_WORKSPACE_POOL > 0?): %w", args[0], q, err)
			}
		}
		fmt.Printf("pool: %s requested of %d host(s); `doce pool status` shows its progress\n", args[0], len(queues))
		return nil
	default:
		fmt.Fprint(os.Stderr, poolUsage)
		return fmt.Errorf("pool: unknown subcommand %q", args[0])
	}
}
