package main

import (
	"context"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/doce-dev/doce/config"
	"github.com/doce-dev/doce/secrets"
)

// dialTemporal connects to Temporal the one way every doce client does: with the payload codec
// on transit's payload key (created when the token may), so whatever doce writes into workflow
// history (inputs, results, memos, queries, signals, failure messages) is encrypted, and
// whatever it reads decodes. opts adds to the defaults; the codec is returned for what else
// decodes payloads (the ops page).
func dialTemporal(ctx context.Context, cfg *config.Config, log *slog.Logger, transit *secrets.Transit, opts client.Options) (client.Client, *secrets.PayloadCodec, error) {
	pt := transit.WithKey(cfg.PayloadKey)
	if err := pt.Ensure(ctx); err != nil {
		return nil, nil, err
	}
	codec := secrets.NewPayloadCodec(pt)
	opts.HostPort, opts.Namespace = cfg.TemporalAddress, cfg.TemporalNamespace
	if opts.Logger == nil {
		opts.Logger = tlog.NewStructuredLogger(log)
	}
	opts.DataConverter = codec.DataConverter()
	opts.FailureConverter = codec.FailureConverter()
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("unable to reach Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return tc, codec, nil
}
