package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// AppRole is how a production doce signs in to Vault: a role id and a secret id read from
// files (mounted secrets), the secret id optionally response-wrapped.
type AppRole struct {
	RoleIDFile   string
	SecretIDFile string
	Wrapped      bool   // the secret id file holds a wrapping token to unwrap
	MountPath    string // where the approle auth method is mounted; default "approle"
}

// NewTransitAppRole is NewTransit signing in with AppRole. The token is renewed for as long as
// Vault allows, then doce signs in again, until ctx ends.
func NewTransitAppRole(ctx context.Context, addr, mount, key string, retries int, ar AppRole, log *slog.Logger) (*Transit, error) {
	t, err := NewTransit(addr, "", mount, key, retries)
	if err != nil {
		return nil, err
	}
	roleID, err := readSecretFile(ar.RoleIDFile)
	if err != nil {
		return nil, fmt.Errorf("secrets: unable to read the AppRole role id: %w", err)
	}
	var opts []approle.LoginOption
	if ar.MountPath != "" {
		opts = append(opts, approle.WithMountPath(ar.MountPath))
	}
	if ar.Wrapped {
		opts = append(opts, approle.WithWrappingToken())
	}
	auth, err := approle.NewAppRoleAuth(roleID, &approle.SecretID{FromFile: ar.SecretIDFile}, opts...)
	if err != nil {
		return nil, fmt.Errorf("secrets: AppRole: %w", err)
	}
	login := func(ctx context.Context) (*vault.Secret, error) {
		sec, err := t.client.Auth().Login(ctx, auth)
		if err != nil {
			return nil, fmt.Errorf("secrets: AppRole login failed: %w", err)
		}
		if sec == nil || sec.Auth == nil {
			return nil, errors.New("secrets: AppRole login returned no token")
		}
		return sec, nil
	}
	sec, err := login(ctx)
	if err != nil {
		return nil, err
	}
	go t.keepLoggedIn(ctx, sec, login, log)
	return t, nil
}

// keepLoggedIn renews the token with Vault's lifetime watcher and signs in again when the token
// can be renewed no more (its max TTL, or a revoked token).
func (t *Transit) keepLoggedIn(ctx context.Context, sec *vault.Secret, login func(context.Context) (*vault.Secret, error), log *slog.Logger) {
	for {
		w, err := t.client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: sec})
		if err != nil {
			log.Error("vault token watcher failed", "error", err)
			return
		}
		go w.Start()
	watch:
		for {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case err := <-w.DoneCh():
				if err != nil {
					log.Warn("vault token renewal ended; signing in again", "error", err)
				}
				break watch
			case <-w.RenewCh():
				log.Debug("vault token renewed")
			}
		}
		for delay := time.Second; ; delay = min(2*delay, time.Minute) {
			if sec, err = login(ctx); err == nil {
				break
			}
			log.Error("vault sign-in failed; trying again", "error", err, "in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}
}
