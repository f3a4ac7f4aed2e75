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

// newPayloadCodec returns the codec that encrypts Temporal payloads with data keys of the
// payload Transit key (on transit's Vault client), creating that key when the token may.
func newPayloadCodec(ctx context.Context, cfg *config.Config, transit *secrets.Transit) (*secrets.PayloadCodec, error) {
	pt := transit.WithKey(cfg.PayloadKey)
	if err := pt.Ensure(ctx); err != nil {
		return nil, err
	}
	return secrets.NewPayloadCodec(pt), nil
}

// dialTemporal connects to Temporal the one way every doce client does: with the payload codec,
// so whatever doce writes into workflow history (inputs, results, memos, queries, signals,
// failure messages) is encrypted, and whatever it reads decodes. opts adds to the defaults.
func dialTemporal(ctx context.Context, cfg *config.Config, log *slog.Logger, codec *secrets.PayloadCodec, opts client.Options) (client.Client, error) {
	opts.HostPort, opts.Namespace = cfg.TemporalAddress, cfg.TemporalNamespace
	if opts.Logger == nil {
		opts.Logger = tlog.NewStructuredLogger(log)
	}
	opts.DataConverter = codec.DataConverter()
	opts.FailureConverter = codec.FailureConverter()
	tc, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("unable to reach Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return tc, nil
}
