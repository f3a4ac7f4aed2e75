package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// keyTTL is how long an opened key is kept in memory after Vault opened it. Opening costs a
// Vault round trip (milliseconds) on every request otherwise; an agent's turn makes many. The
// key stays in this process only, for a few minutes at most: a replaced or disconnected key is
// never used from here (its ciphertext no longer matches), and a Vault that stops opening keys
// stops the gateway within keyTTL.
const keyTTL = 2 * time.Minute

// keyCache holds opened provider keys by connection, each with the ciphertext it was opened
// from.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]openedKey
}

type openedKey struct {
	ciphertext string
	key        string
	until      time.Time
}

// open returns conn's API key: from memory when it was opened from the same ciphertext within
// keyTTL, else from Vault.
func (g *Gateway) open(ctx context.Context, conn *store.ProviderConnection) (string, error) {
	now := time.Now()
	g.keys.mu.Lock()
	k, ok := g.keys.keys[conn.ID]
	g.keys.mu.Unlock()
	if ok && k.ciphertext == conn.APIKeyCiphertext && now.Before(k.until) {
		return k.key, nil
	}
	plain, err := g.Secrets.Decrypt(ctx, conn.APIKeyCiphertext, secrets.ConnectionContext(conn.UserID, conn.ProviderID, secrets.FieldAPIKey))
	if err != nil {
		return "", err
	}
	g.keys.mu.Lock()
	defer g.keys.mu.Unlock()
	if g.keys.keys == nil {
		g.keys.keys = map[string]openedKey{}
	}
	for id, k := range g.keys.keys { // few entries: one per connection in use
		if !now.Before(k.until) {
			delete(g.keys.keys, id)
		}
	}
	g.keys.keys[conn.ID] = openedKey{ciphertext: conn.APIKeyCiphertext, key: string(plain), until: now.Add(keyTTL)}
	return string(plain), nil
}
