package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

const keysUsage = `Usage:
  doce keys status          the Transit key's versions and the stored ciphertexts per version
  doce keys rotate [-wait]  rotate the key and rewrap every stored ciphertext (CredentialRewrap)
`

// runKeys is `doce keys`: key rotation for operators.
func runKeys(ctx context.Context, cfg *config.Config, log *slog.Logger, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, keysUsage)
		return errors.New("keys: name a subcommand")
	}
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	wait := fs.Bool("wait", false, "wait for the rewrap to finish, printing its progress")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := cfg.RequireVaultAuth(); err != nil {
		return err
	}
	transit, err := newTransit(ctx, cfg, log, 2)
	if err != nil {
		return err
	}
	st, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()

	switch args[0] {
	case "status":
		info, err := transit.Info(ctx)
		if err != nil {
			return err
		}
		counts, err := st.ConnectionsByKeyVersion(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("key %s/%s: latest version %d, oldest that decrypts %d\n", cfg.TransitMount, cfg.TransitKey, info.LatestVersion, info.MinDecryptionVersion)
		for _, c := range counts {
			fmt.Printf("  connections at version %d: %d\n", c.Version, c.Count)
		}
		return nil
	case "rotate":
		info, err := transit.Rotate(ctx)
		if err != nil {
			return err
		}
		if err := st.Audit(ctx, nil, store.AuditEvent{ActorID: "operator-cli", Action: "key.rotate", TargetType: "transit-key", TargetID: cfg.TransitKey, Detail: fmt.Sprintf("version %d", info.LatestVersion)}); err != nil {
			return err
		}
		fmt.Printf("rotated %s to version %d; rewrapping stored ciphertexts\n", cfg.TransitKey, info.LatestVersion)
		tc, _, err := dialTemporal(ctx, cfg, log, transit, client.Options{})
		if err != nil {
			return err
		}
		defer tc.Close()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       workflows.RewrapWorkflowID,
			TaskQueue:                cfg.TaskQueue,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		}, workflows.TypeCredentialRewrap, workflows.RewrapState{})
		if err != nil {
			return fmt.Errorf("unable to start the rewrap: %w", err)
		}
		fmt.Printf("rewrap workflow %s run %s\n", run.GetID(), run.GetRunID())
		if !*wait {
			return nil
		}
		done := make(chan error, 1)
		var result workflows.RewrapState
		go func() { done <- tc.GetWorkflow(ctx, run.GetID(), "").Get(ctx, &result) }()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case err := <-done:
				if err != nil {
					return fmt.Errorf("rewrap failed: %w", err)
				}
				fmt.Printf("rewrapped %d ciphertexts in %d rows; versions below %d retired\n", result.Rewrapped, result.Seen, result.Retired)
				return nil
			case <-tick.C:
				if v, err := tc.QueryWorkflow(ctx, run.GetID(), "", workflows.QueryProgress); err == nil {
					var p workflows.RewrapState
					if v.Get(&p) == nil {
						fmt.Printf("  %s: %d rows read, %d rewrapped\n", p.Table, p.Seen, p.Rewrapped)
					}
				}
			}
		}
	default:
		fmt.Fprint(os.Stderr, keysUsage)
		return fmt.Errorf("keys: unknown subcommand %q", args[0])
	}
}
