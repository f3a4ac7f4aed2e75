package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Session is a signed-in browser or API client. Only the token's hash is stored, so a copy of
// the database cannot be used to sign in.
type Session struct {
	bun.BaseModel `bun:"table:sessions"`

	ID        string    `bun:"id,pk"`
	UserID    string    `bun:"user_id"`
	TokenHash string    `bun:"token_hash"`
	CreatedAt time.Time `bun:"created_at"`
	ExpiresAt time.Time `bun:"expires_at"`
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateSession starts a session for userID lasting ttl and returns the token to hand the client.
func (s *Store) CreateSession(ctx context.Context, userID string, ttl time.Duration) (string, error) {
	token := base64.RawURLEncoding.EncodeToString(RandomToken(32))
	now := time.Now().UTC()
	sess := &Session{ID: NewID(), UserID: userID, TokenHash: hashToken(token), CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if _, err := s.DB.NewInsert().Model(sess).Exec(ctx); err != nil {
		return "", fmt.Errorf("store: unable to create session: %w", err)
	}
	return token, nil
}

// UserBySessionToken returns the user a live session token belongs to.
func (s *Store) UserBySessionToken(ctx context.Context, token string) (*User, error) {
	u := new(User)
	err := s.DB.NewSelect().Model(u).
		Join("JOIN sessions AS s ON s.user_id = u.id").
		Where("s.token_hash = ?", hashToken(token)).
		Where("s.expires_at > ?", time.Now().UTC()).
		Where("u.disabled_at IS NULL").
		Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return u, nil
}

// DeleteSession ends the session holding token.
func (s *Store) DeleteSession(ctx context.Context, token string) error {
	if _, err := s.DB.NewDelete().Model((*Session)(nil)).Where("token_hash = ?", hashToken(token)).Exec(ctx); err != nil {
		return fmt.Errorf("store: unable to delete session: %w", err)
	}
	return nil
}
