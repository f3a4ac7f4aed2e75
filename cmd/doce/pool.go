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
	"github.com/doce-dev/doce/workflows"
)

const poolUsage = `Usage:
  doce pool status   the prebuilt workspaces: size, free, starting, failed, each one's age
  doce pool drain    remove every unclaimed workspace and keep the pool empty (before an upgrade)
  doce pool refill   undo a drain: start workspaces up to DOCE_WORKSPACE_POOL now
`

// runPool is `doce pool`: the workspace pool's state and its operator actions.
func runPool(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) != 1 {
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
		fmt.Printf("size %d  free %d  starting %d  failed %d\n", cfg.PoolSize, n[store.PoolFree], n[store.PoolStarting], n[store.PoolFailed])
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tIMAGE\tAGE\tERROR")
		for _, w := range ws {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", w.ID, w.Status, w.Image, time.Since(w.CreatedAt).Round(time.Second), w.Error)
		}
		return tw.Flush()
	case "drain", "refill":
		tc, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: tlog.NewStructuredLogger(log)})
		if err != nil {
			return fmt.Errorf("unable to reach Temporal at %s: %w", cfg.TemporalAddress, err)
		}
		defer tc.Close()
		signal := workflows.SignalPoolDrain
		if args[0] == "refill" {
			signal = workflows.SignalPoolRefill
		}
		if err := tc.SignalWorkflow(ctx, workflows.PoolWorkflowID(cfg.TaskQueue), "", signal, nil); err != nil {
			return fmt.Errorf("pool %s: the pool's reconciler is not running (is a worker with DOCE_WORKSPACE_POOL > 0 up?): %w", args[0], err)
		}
		fmt.Printf("pool: %s requested; `doce pool status` shows its progress\n", args[0])
		return nil
	default:
		fmt.Fprint(os.Stderr, poolUsage)
		return fmt.Errorf("pool: unknown subcommand %q", args[0])
	}
}
