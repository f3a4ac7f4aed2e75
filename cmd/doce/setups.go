package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"text/tabwriter"

	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/status"
)

const setupsUsage = `Usage:
  doce setups list [-stuck-after 15m]   setups waiting for an operator or running long
  doce setups retry PROJECT_ID...       resume failed setups at their failed step
  doce setups retry -all                retry every setup waiting for an operator
  doce setups cancel PROJECT_ID...      tear down failed setups
`

// runSetups is `doce setups`: the ops page's list, retry and cancel from a shell.
func runSetups(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, setupsUsage)
		return errors.New("setups: name a subcommand")
	}
	fs := flag.NewFlagSet("setups "+args[0], flag.ContinueOnError)
	stuckAfter := fs.Duration("stuck-after", cfg.StuckAfter, "list setups running longer than this")
	all := fs.Bool("all", false, "retry every setup waiting for an operator")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := cfg.RequireVaultAuth(); err != nil {
		return err
	}
	transit, err := newTransit(ctx, cfg, log, 2)
	if err != nil {
		return err
	}
	tc, _, err := dialTemporal(ctx, cfg, log, transit, client.Options{})
	if err != nil {
		return err
	}
	defer tc.Close()
	svc := newSetups(cfg, tc, st)

	switch args[0] {
	case "list":
		list, err := svc.ListNeedingAttention(ctx, *stuckAfter, 1000)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PROJECT\tNAME\tOWNER\tSTATE\tSTEP\tAGE\tREASON\tTEMPORAL")
		for _, s := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ProjectID, s.ProjectName, s.Owner, s.State, s.Step, s.Age(), s.Reason, s.TemporalURL)
		}
		return w.Flush()
	case "retry", "cancel":
		ids := fs.Args()
		if *all {
			if args[0] != "retry" {
				return errors.New("setups: -all works with retry only")
			}
			list, err := svc.ListNeedingAttention(ctx, *stuckAfter, 1000)
			if err != nil {
				return err
			}
			for _, s := range list {
				if s.State == status.SetupWaiting {
					ids = append(ids, s.ProjectID)
				}
			}
		}
		if len(ids) == 0 {
			return errors.New("setups: name at least one project id (see `doce setups list`)")
		}
		failed := 0
		for _, id := range ids {
			if _, err := svc.Operate(ctx, id, setups.Operation(args[0]), "operator-cli"); err != nil {
				failed++
				fmt.Printf("%s: not done: %v\n", id, err)
				continue
			}
			fmt.Printf("%s: %s accepted\n", id, args[0])
		}
		if failed > 0 {
			return fmt.Errorf("setups: %d of %d not done", failed, len(ids))
		}
		return nil
	default:
		fmt.Fprint(os.Stderr, setupsUsage)
		return fmt.Errorf("setups: unknown subcommand %q", args[0])
	}
}
