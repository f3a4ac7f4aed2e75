package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// ForgeConnection is a git forge a user connected with a personal access token. The token is
// Vault Transit ciphertext only (secrets.ForgeContext binds it to its user and row).
type ForgeConnection struct {
	bun.BaseModel `bun:"table:forge_connections"`

	ID              string `bun:"id,pk"`
	UserID          string `bun:"user_id"`
	Kind            string `bun:"kind"` // forges.GitHub, forges.GitLab, forges.Gitea
	BaseURL         string `bun:"base_url"`
	AccountLogin    string `bun:"account_login"`
	AccountName     string `bun:"account_name"`
	TokenCiphertext string `bun:"token_ciphertext"`
	KeyVersion      int    `bun:"key_version"`
	DisplayHint     string `bun:"display_hint"`
	// TokenRefusedAt is when the forge last refused the token (revoked, expired, or without
	// the access a push, pull or import needed); nil while it works.
	TokenRefusedAt *time.Time `bun:"token_refused_at"`
	CreatedAt      time.Time  `bun:"created_at"`
	UpdatedAt      time.Time  `bun:"updated_at"`
}

// CreateForgeConnection inserts f, whose ID the caller chose (its token is sealed to it). A
// second connection of the user to the same forge is ErrConflict.
func (s *Store) CreateForgeConnection(ctx context.Context, f *ForgeConnection) error {
	now := time.Now().UTC()
	f.CreatedAt, f.UpdatedAt = now, now
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(f).Exec(ctx); err != nil {
			if isUniqueViolation(err) {
				return ErrConflict
			}
			return fmt.Errorf("store: unable to insert forge connection: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: f.UserID, Action: "forge.connect", TargetType: "forge", TargetID: f.ID,
			Detail: f.Kind + " " + f.BaseURL + " as " + f.AccountLogin})
	})
}

// ForgeConnectionsByUser lists a user's forge connections, oldest first.
func (s *Store) ForgeConnectionsByUser(ctx context.Context, userID string) ([]ForgeConnection, error) {
	fs := []ForgeConnection{}
	if err := s.DB.NewSelect().Model(&fs).Where("user_id = ?", userID).Order("created_at", "id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list forge connections: %w", err)
	}
	return fs, nil
}

// ForgeConnection returns userID's forge connection id; another user's is ErrNotFound.
func (s *Store) ForgeConnection(ctx context.Context, userID, id string) (*ForgeConnection, error) {
	f := new(ForgeConnection)
	if err := s.DB.NewSelect().Model(f).Where("id = ?", id).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return f, nil
}

// DeleteForgeConnection removes userID's forge connection id (ErrNotFound when it has none such).
func (s *Store) DeleteForgeConnection(ctx context.Context, userID, id string) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		f := new(ForgeConnection)
		if err := tx.NewSelect().Model(f).Where("id = ?", id).Where("user_id = ?", userID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if _, err := tx.NewDelete().Model(f).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to delete forge connection: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: userID, Action: "forge.disconnect", TargetType: "forge", TargetID: id, Detail: f.Kind + " " + f.BaseURL})
	})
}

// ReplaceForgeToken stores f's new token (and the account it signs in as) on its existing row,
// which makes it a working connection again.
func (s *Store) ReplaceForgeToken(ctx context.Context, f *ForgeConnection) error {
	f.UpdatedAt, f.TokenRefusedAt = time.Now().UTC().Truncate(time.Microsecond), nil
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model(f).
			Column("account_login", "account_name", "token_ciphertext", "key_version", "display_hint", "token_refused_at", "updated_at").
			WherePK().Where("user_id = ?", f.UserID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to replace forge token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: f.UserID, Action: "forge.replace", TargetType: "forge", TargetID: f.ID,
			Detail: f.Kind + " " + f.BaseURL + " as " + f.AccountLogin})
	})
}

// MarkForgeTokenRefused records that the forge refused f's token, unless the token was
// replaced since f was read (the new one is not the one refused).
func (s *Store) MarkForgeTokenRefused(ctx context.Context, f *ForgeConnection) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		now := time.Now().UTC().Truncate(time.Microsecond)
		res, err := tx.NewUpdate().Model((*ForgeConnection)(nil)).Set("token_refused_at = ?", now).
			Where("id = ?", f.ID).Where("updated_at = ?", f.UpdatedAt).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to mark forge token refused: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		f.TokenRefusedAt = &now
		return s.Audit(ctx, tx, AuditEvent{ActorID: f.UserID, Action: "forge.token-refused", TargetType: "forge", TargetID: f.ID, Detail: f.Kind + " " + f.BaseURL})
	})
}

// ForgeConnectionsPage lists forge connections with ids after afterID, in id order (key rewraps).
func (s *Store) ForgeConnectionsPage(ctx context.Context, afterID string, limit int) ([]ForgeConnection, error) {
	var fs []ForgeConnection
	if err := s.DB.NewSelect().Model(&fs).Where("id > ?", afterID).Order("id").Limit(int64(limit)).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to page forge connections: %w", err)
	}
	return fs, nil
}

// UpdateForgeCiphertext stores f's rewrapped token and key version, unless the row changed
// since f was read.
func (s *Store) UpdateForgeCiphertext(ctx context.Context, f *ForgeConnection) error {
	_, err := s.DB.NewUpdate().Model(f).Column("token_ciphertext", "key_version").
		WherePK().Where("updated_at = ?", f.UpdatedAt).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to store rewrapped forge connection: %w", err)
	}
	return nil
}

// ForgeForURL is the user's forge connection whose address the repository URL is under (the
// longest such, for forges served under a path); nil when none is. Only that forge is ever
// lent the connection's token, so no token goes to another address.
func (s *Store) ForgeForURL(ctx context.Context, userID, repositoryURL string) (*ForgeConnection, error) {
	fs, err := s.ForgeConnectionsByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	var best *ForgeConnection
	for i, f := range fs {
		if strings.HasPrefix(repositoryURL, f.BaseURL+"/") && (best == nil || len(f.BaseURL) > len(best.BaseURL)) {
			best = &fs[i]
		}
	}
	return best, nil
}
