package gateway

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// keyTTL is how long an opened key is kept in memory after Vault opened it. Opening costs a
// Vault round trip (milliseconds) on every request otherwise; an agent's turn makes many. The
// key stays in this process only, for a few minutes at most: a replaced or disconnected key is
// never used from here (its ciphertext no longer matches), and a Vault that stops opening keys
// stops the gateway within keyTTL.
const keyTTL = 2 * time.Minute

// openedKeys holds opened provider keys by connection and the ciphertext each was opened from.
type openedKeys = otter.Cache[keyOf, string]

type keyOf struct{ connectionID, ciphertext string }

func newOpenedKeys() *openedKeys {
	return otter.Must(&otter.Options[keyOf, string]{MaximumSize: 10_000, ExpiryCalculator: otter.ExpiryWriting[keyOf, string](keyTTL)})
}

// open returns conn's API key: from memory when it was opened from the same ciphertext within
// keyTTL, else from Vault.
func (g *Gateway) open(ctx context.Context, conn *store.ProviderConnection) (string, error) {
	return g.keys.Get(ctx, keyOf{conn.ID, conn.APIKeyCiphertext}, otter.LoaderFunc[keyOf, string](func(ctx context.Context, k keyOf) (string, error) {
		plain, err := g.Secrets.Decrypt(ctx, k.ciphertext, secrets.ConnectionContext(conn.UserID, conn.ProviderID, secrets.FieldAPIKey))
		return string(plain), err
	}))
}
