package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Auth types a connection can have; they are OpenCode's auth types.
const (
	AuthAPI       = "api"
	AuthOAuth     = "oauth"
	AuthWellKnown = "wellknown"
)

// Connection statuses.
const (
	ConnConnected = "connected"
	ConnExpired   = "expired"
	ConnError     = "error"
	ConnRevoked   = "revoked"
)

// ProviderConnection is one provider a user has connected. Secret fields hold Vault Transit
// ciphertext only; see package secrets for how each is bound to its row and field.
type ProviderConnection struct {
	bun.BaseModel `bun:"table:provider_connections"`

	ID                     string     `bun:"id,pk"`
	UserID                 string     `bun:"user_id"`
	ProviderID             string     `bun:"provider_id"`
	AuthType               string     `bun:"auth_type"`
	APIKeyCiphertext       string     `bun:"api_key_ciphertext,nullzero"`
	OAuthRefreshCiphertext string     `bun:"oauth_refresh_ciphertext,nullzero"`
	OAuthAccessCiphertext  string     `bun:"oauth_access_ciphertext,nullzero"`
	OAuthExpiresAt         *time.Time `bun:"oauth_expires_at"`
	OAuthEnterpriseURL     string     `bun:"oauth_enterprise_url,nullzero"`
	OAuthAccountID         string     `bun:"oauth_account_id,nullzero"`
	WellKnownURL           string     `bun:"wellknown_url,nullzero"`
	WellKnownCiphertext    string     `bun:"wellknown_ciphertext,nullzero"`
	WellKnownEnv           string     `bun:"wellknown_env,nullzero"`
	BaseURL                string     `bun:"base_url,nullzero"`
	ModelIDs               string     `bun:"model_ids,nullzero"` // comma-separated
	KeyVersion             int        `bun:"key_version"`
	DisplayHint            string     `bun:"display_hint"`
	Status                 string     `bun:"status"`
	ErrorMessage           string     `bun:"error_message,nullzero"`
	LastUsedAt             *time.Time `bun:"last_used_at"`
	CreatedAt              time.Time  `bun:"created_at"`
	UpdatedAt              time.Time  `bun:"updated_at"`
}

// Models returns the model ids a custom provider serves.
func (c *ProviderConnection) Models() []string {
	if c.ModelIDs == "" {
		return nil
	}
	return strings.Split(c.ModelIDs, ",")
}

// CreateConnection inserts c for its user. A second connection for the same provider is
// refused with ErrConflict: replacing one is an explicit act.
func (s *Store) CreateConnection(ctx context.Context, c *ProviderConnection) error {
	now := time.Now().UTC()
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertConnection(ctx, tx, c, now); err != nil {
			return err
		}
		if err := initSettings(ctx, tx, c.UserID, c.ProviderID, now); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: c.UserID, Action: "connection.create", TargetType: "provider", TargetID: c.ProviderID, Detail: c.AuthType})
	})
}

// initSettings makes the first provider a user connects their preferred one.
func initSettings(ctx context.Context, tx bun.Tx, userID, providerID string, now time.Time) error {
	_, err := tx.NewInsert().Model(&UserSettings{UserID: userID, PreferredProviderID: providerID, ProviderAuthInitialized: true, UpdatedAt: now}).
		On("CONFLICT (user_id) DO UPDATE").
		Set("preferred_provider_id = COALESCE(user_settings.preferred_provider_id, EXCLUDED.preferred_provider_id)").
		Set("provider_auth_initialized = TRUE").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to update settings: %w", err)
	}
	return nil
}

// insertConnection inserts c as connected; a second one for the same user and provider is
// ErrConflict.
func insertConnection(ctx context.Context, tx bun.Tx, c *ProviderConnection, now time.Time) error {
	c.ID = NewID()
	c.Status = ConnConnected
	c.CreatedAt, c.UpdatedAt = now, now
	if _, err := tx.NewInsert().Model(c).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: unable to insert connection: %w", err)
	}
	return nil
}

// ConnectionsByUser lists a user's connections, oldest first.
func (s *Store) ConnectionsByUser(ctx context.Context, userID string) ([]ProviderConnection, error) {
	var cs []ProviderConnection
	if err := s.DB.NewSelect().Model(&cs).Where("user_id = ?", userID).Order("created_at").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list connections: %w", err)
	}
	return cs, nil
}

// Connection returns userID's connection to providerID.
func (s *Store) Connection(ctx context.Context, userID, providerID string) (*ProviderConnection, error) {
	c := new(ProviderConnection)
	err := s.DB.NewSelect().Model(c).Where("user_id = ?", userID).Where("provider_id = ?", providerID).Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return c, nil
}

// TouchConnection records that a connection's secret was used for a project.
func (s *Store) TouchConnection(ctx context.Context, c *ProviderConnection, projectID string) error {
	now := time.Now().UTC()
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*ProviderConnection)(nil)).Set("last_used_at = ?", now).Where("id = ?", c.ID).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to touch connection: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: c.UserID, Action: "connection.decrypt-for-use", TargetType: "provider", TargetID: c.ProviderID, Detail: "project " + projectID})
	})
}

// ReplaceConnectionSecret stores a new key (and, for custom providers, base URL and models)
// on an existing connection and marks it connected again. A sign-in it replaces is cleared.
func (s *Store) ReplaceConnectionSecret(ctx context.Context, c *ProviderConnection) error {
	c.UpdatedAt = time.Now().UTC()
	c.Status, c.ErrorMessage = ConnConnected, ""
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model(c).
			Column("auth_type", "api_key_ciphertext", "wellknown_url", "wellknown_env", "wellknown_ciphertext",
				"oauth_access_ciphertext", "oauth_refresh_ciphertext", "oauth_expires_at", "oauth_enterprise_url", "oauth_account_id",
				"key_version", "display_hint", "base_url", "model_ids", "status", "error_message", "updated_at").
			Where("user_id = ?", c.UserID).Where("provider_id = ?", c.ProviderID).Where("status != ?", ConnRevoked).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to replace connection: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if err := revokeConnectionTokens(ctx, tx, c.UserID, c.ProviderID); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: c.UserID, Action: "connection.replace", TargetType: "provider", TargetID: c.ProviderID, Detail: c.AuthType})
	})
}

// SaveOAuthConnection stores the tokens of a finished login as the user's connection to the
// provider: a new connection, or the existing one's credential replaced (a second login, or
// logging in again after the token expired).
func (s *Store) SaveOAuthConnection(ctx context.Context, c *ProviderConnection) error {
	now := time.Now().UTC()
	c.AuthType, c.Status, c.ErrorMessage, c.UpdatedAt = AuthOAuth, ConnConnected, "", now
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// Update, else insert: two logins finishing at once must not both insert.
		if err := s.serializeWrites(ctx, tx, "provider_connections"); err != nil {
			return err
		}
		res, err := tx.NewUpdate().Model(c).
			Column("auth_type", "api_key_ciphertext", "oauth_access_ciphertext", "oauth_refresh_ciphertext", "oauth_expires_at",
				"oauth_enterprise_url", "oauth_account_id", "key_version", "display_hint", "status", "error_message", "updated_at").
			Where("user_id = ?", c.UserID).Where("provider_id = ?", c.ProviderID).Where("status != ?", ConnRevoked).
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to store the login: %w", err)
		}
		action := "connection.replace"
		if n, _ := res.RowsAffected(); n == 0 {
			action = "connection.create"
			if err := insertConnection(ctx, tx, c, now); err != nil {
				return err
			}
			if err := initSettings(ctx, tx, c.UserID, c.ProviderID, now); err != nil {
				return err
			}
		} else if err := revokeConnectionTokens(ctx, tx, c.UserID, c.ProviderID); err != nil {
			return err
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: c.UserID, Action: action, TargetType: "provider", TargetID: c.ProviderID, Detail: AuthOAuth})
	})
}

// UpdateOAuthTokens stores a refreshed token pair in place of the pair that expires at
// oldExpiry, as read from this row. When that is no longer the stored one (a new login came
// first) it stores nothing and reports false. The expiry, not the ciphertext, identifies the
// pair: a key rotation rewraps ciphertexts and must not make a refresh drop what the provider
// just rotated.
func (s *Store) UpdateOAuthTokens(ctx context.Context, c *ProviderConnection, oldExpiry time.Time) (bool, error) {
	c.UpdatedAt = time.Now().UTC()
	res, err := s.DB.NewUpdate().Model(c).
		Column("oauth_access_ciphertext", "oauth_refresh_ciphertext", "oauth_expires_at", "oauth_account_id", "key_version", "updated_at").
		WherePK().Where("status = ?", ConnConnected).Where("oauth_expires_at = ?", oldExpiry).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: unable to store the refreshed token: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ExpireConnection marks a connection whose provider refuses its refresh token: the user
// must log in again.
func (s *Store) ExpireConnection(ctx context.Context, c *ProviderConnection, reason string) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewUpdate().Model((*ProviderConnection)(nil)).
			Set("status = ?", ConnExpired).Set("error_message = ?", reason).Set("updated_at = ?", time.Now().UTC()).
			Where("id = ?", c.ID).Where("status = ?", ConnConnected).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to mark the connection expired: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: "system", Action: "connection.expire", TargetType: "provider", TargetID: c.ProviderID, Detail: "user " + c.UserID})
	})
}

// SetConnectionStatus sets a connection's status.
func (s *Store) SetConnectionStatus(ctx context.Context, userID, providerID, status string) error {
	res, err := s.DB.NewUpdate().Model((*ProviderConnection)(nil)).
		Set("status = ?", status).Set("updated_at = ?", time.Now().UTC()).
		Where("user_id = ?", userID).Where("provider_id = ?", providerID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to set connection status: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteConnection removes a connection and records who did it.
func (s *Store) DeleteConnection(ctx context.Context, userID, providerID, actorID string) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		_, err := tx.NewDelete().Model((*ProviderConnection)(nil)).Where("user_id = ?", userID).Where("provider_id = ?", providerID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to delete connection: %w", err)
		}
		_, err = tx.NewUpdate().Model((*UserSettings)(nil)).Set("preferred_provider_id = NULL").
			Where("user_id = ?", userID).Where("preferred_provider_id = ?", providerID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to clear preferred provider: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: actorID, Action: "connection.disconnect", TargetType: "provider", TargetID: providerID, Detail: "user " + userID})
	})
}

// SetPreferredProvider makes providerID, which must be connected, the user's default.
func (s *Store) SetPreferredProvider(ctx context.Context, userID, providerID string) error {
	if _, err := s.Connection(ctx, userID, providerID); err != nil {
		return err
	}
	_, err := s.DB.NewInsert().Model(&UserSettings{UserID: userID, PreferredProviderID: providerID, ProviderAuthInitialized: true, UpdatedAt: time.Now().UTC()}).
		On("CONFLICT (user_id) DO UPDATE").
		Set("preferred_provider_id = EXCLUDED.preferred_provider_id").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to set preferred provider: %w", err)
	}
	return nil
}

// ConnectionsPage lists connections with ids after afterID, in id order.
func (s *Store) ConnectionsPage(ctx context.Context, afterID string, limit int) ([]ProviderConnection, error) {
	var cs []ProviderConnection
	err := s.DB.NewSelect().Model(&cs).Where("id > ?", afterID).Order("id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to page connections: %w", err)
	}
	return cs, nil
}

// UpdateConnectionCiphertexts stores rewrapped ciphertexts of c and its key version, unless the
// row changed since c was read (a token refresh, a new key): that change was sealed with the
// newest key already, and the rewrapped old secret must not overwrite it.
func (s *Store) UpdateConnectionCiphertexts(ctx context.Context, c *ProviderConnection) error {
	_, err := s.DB.NewUpdate().Model(c).
		Column("api_key_ciphertext", "oauth_refresh_ciphertext", "oauth_access_ciphertext", "wellknown_ciphertext", "key_version").
		WherePK().Where("updated_at = ?", c.UpdatedAt).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to store rewrapped connection: %w", err)
	}
	return nil
}

// VersionCount is how many connections hold ciphertext of a key version.
type VersionCount struct {
	Version int `bun:"key_version"`
	Count   int `bun:"n"`
}

// ConnectionsByKeyVersion counts connections per key version.
func (s *Store) ConnectionsByKeyVersion(ctx context.Context) ([]VersionCount, error) {
	var out []VersionCount
	err := s.DB.NewSelect().Model((*ProviderConnection)(nil)).ColumnExpr("key_version, COUNT(*) AS n").
		Group("key_version").Order("key_version").Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("store: unable to count key versions: %w", err)
	}
	return out, nil
}

// ImportConnection stores a connection brought from doce.dev, makes it the user's preferred
// provider and records the migration as complete.
func (s *Store) ImportConnection(ctx context.Context, c *ProviderConnection, defaultModel string) error {
	now := time.Now().UTC()
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := insertConnection(ctx, tx, c, now); err != nil {
			return err
		}
		_, err := tx.NewInsert().Model(&UserSettings{UserID: c.UserID, PreferredProviderID: c.ProviderID, DefaultModel: defaultModel,
			ProviderAuthInitialized: true, MigrationCompletedAt: &now, UpdatedAt: now}).
			On("CONFLICT (user_id) DO UPDATE").
			Set("preferred_provider_id = EXCLUDED.preferred_provider_id").
			Set("default_model = COALESCE(user_settings.default_model, EXCLUDED.default_model)").
			Set("provider_auth_initialized = TRUE").
			Set("migration_completed_at = EXCLUDED.migration_completed_at").
			Set("updated_at = EXCLUDED.updated_at").
			Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to update settings: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: c.UserID, Action: "connection.import", TargetType: "provider", TargetID: c.ProviderID, Detail: "from doce.dev"})
	})
}
