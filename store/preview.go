package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// SigningKey is a key doce signs with, sealed by Vault Transit.
type SigningKey struct {
	bun.BaseModel `bun:"table:signing_keys"`

	Name       string    `bun:"name,pk"`
	Ciphertext string    `bun:"ciphertext"`
	CreatedAt  time.Time `bun:"created_at"`
}

// SigningKey returns the sealed key called name, or ErrNotFound.
func (s *Store) SigningKey(ctx context.Context, name string) (*SigningKey, error) {
	k := new(SigningKey)
	if err := s.DB.NewSelect().Model(k).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return k, nil
}

// AddSigningKey stores a sealed key unless one of that name exists: when two processes start
// at once, the first key stored wins and both use it.
func (s *Store) AddSigningKey(ctx context.Context, name, ciphertext string) error {
	k := &SigningKey{Name: name, Ciphertext: ciphertext, CreatedAt: time.Now().UTC()}
	if _, err := s.DB.NewInsert().Model(k).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to store signing key: %w", err)
	}
	return nil
}

// ReplaceSigningKeyCiphertext swaps a key's ciphertext (a rewrap to a new Transit key version)
// if it still holds old.
func (s *Store) ReplaceSigningKeyCiphertext(ctx context.Context, name, old, ciphertext string) error {
	_, err := s.DB.NewUpdate().Model((*SigningKey)(nil)).Set("ciphertext = ?", ciphertext).
		Where("name = ?", name).Where("ciphertext = ?", old).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to update signing key: %w", err)
	}
	return nil
}

// SigningKeys lists every sealed key.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var ks []SigningKey
	if err := s.DB.NewSelect().Model(&ks).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list signing keys: %w", err)
	}
	return ks, nil
}

type previewTokenUse struct {
	bun.BaseModel `bun:"table:preview_token_uses"`

	ID        string    `bun:"id,pk"`
	ExpiresAt time.Time `bun:"expires_at"`
}

// ErrTokenUsed means a one-time token was used before.
var ErrTokenUsed = errors.New("store: token already used")

// UsePreviewToken records that the token with id was used, or returns ErrTokenUsed if it was
// before. Records of tokens past their expiry are dropped on the way: an expired token is
// refused by its signature's expiry, whether or not it was used.
func (s *Store) UsePreviewToken(ctx context.Context, id string, expiresAt time.Time) error {
	now := time.Now().UTC()
	if _, err := s.DB.NewDelete().Model((*previewTokenUse)(nil)).Where("expires_at < ?", now).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to prune preview tokens: %w", err)
	}
	res, err := s.DB.NewInsert().Model(&previewTokenUse{ID: id, ExpiresAt: expiresAt.UTC()}).On("CONFLICT DO NOTHING").Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to record preview token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrTokenUsed
	}
	return nil
}

// SessionByToken returns the live session a session token names.
func (s *Store) SessionByToken(ctx context.Context, token string) (*Session, error) {
	sess := new(Session)
	err := s.DB.NewSelect().Model(sess).Where("token_hash = ?", hashToken(token)).Where("expires_at > ?", time.Now().UTC()).Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return sess, nil
}

// PreviewProject returns project id for a preview request by userID under sessionID: only
// while that session lives, its user is enabled and owns the project, and the project is not
// deleted. Anything else is ErrNotFound.
func (s *Store) PreviewProject(ctx context.Context, id, userID, sessionID string) (*Project, error) {
	p := new(Project)
	err := s.DB.NewSelect().Model(p).
		Join("JOIN sessions AS s ON s.user_id = project.owner_user_id").
		Join("JOIN users AS u ON u.id = project.owner_user_id").
		Where("project.id = ?", id).Where("project.owner_user_id = ?", userID).Where("project.deleted_at IS NULL").
		Where("s.id = ?", sessionID).Where("s.expires_at > ?", time.Now().UTC()).
		Where("u.disabled_at IS NULL").
		Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return p, nil
}
