package store

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Password hashes doce accepts: bcrypt for its own users, and the scrypt hashes of doce.dev
// users brought in by `doce import-legacy` ("legacy-scrypt:<salt hex>:<key hex>", Node's
// crypto.scrypt with N=16384, r=8, p=1, a 64-byte key and the salt's hex text as salt).
// A legacy hash is replaced by bcrypt at the user's next sign-in.
const (
	LegacyScryptPrefix = "legacy-scrypt:"
	// ResetRequired marks a user whose imported hash doce cannot check; it never verifies.
	ResetRequired = "reset-required"
)

// ErrPasswordReset means the user must have an administrator set a new password.
var ErrPasswordReset = errors.New("store: password must be reset")

// HashPassword hashes a new password with bcrypt.
func HashPassword(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// CheckPassword reports whether password matches hash. needsRehash says the hash is a legacy
// one to replace.
func CheckPassword(hash, password string) (ok, needsRehash bool, err error) {
	switch {
	case hash == ResetRequired:
		return false, false, ErrPasswordReset
	case strings.HasPrefix(hash, LegacyScryptPrefix):
		salt, keyHex, found := strings.Cut(strings.TrimPrefix(hash, LegacyScryptPrefix), ":")
		want, err := hex.DecodeString(keyHex)
		if !found || err != nil || len(want) != 64 {
			return false, false, ErrPasswordReset
		}
		got, err := scrypt.Key([]byte(password), []byte(salt), 16384, 8, 1, 64)
		if err != nil {
			return false, false, err
		}
		return subtle.ConstantTimeCompare(got, want) == 1, true, nil
	default:
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil, false, nil
	}
}

// ChangePassword gives the user a new password hash and ends what the old password let in:
// every session but keepSessionID (the one that made the change; "" keeps none) and every API
// token. It returns how many sessions it ended and tokens it revoked, and audits the change.
func (s *Store) ChangePassword(ctx context.Context, userID, hash, keepSessionID string) (sessions, tokens int, err error) {
	err = s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", hash).Where("id = ?", userID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		res, err = tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", userID).Where("id <> ?", keepSessionID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to end sessions: %w", err)
		}
		n, _ := res.RowsAffected()
		sessions = int(n)
		res, err = tx.NewUpdate().Model((*APIToken)(nil)).Set("revoked_at = ?", time.Now().UTC()).
			Where("user_id = ?", userID).Where("revoked_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to revoke API tokens: %w", err)
		}
		n, _ = res.RowsAffected()
		tokens = int(n)
		return s.Audit(ctx, tx, AuditEvent{ActorID: userID, Action: "user.password_change", TargetType: "user", TargetID: userID,
			Detail: fmt.Sprintf("sessions_ended=%d api_tokens_revoked=%d", sessions, tokens)})
	})
	return sessions, tokens, err
}

// SetPasswordHash stores a new hash for the user (a legacy hash upgraded at sign-in: the same
// password, so nothing else changes).
func (s *Store) SetPasswordHash(ctx context.Context, userID, hash string) error {
	_, err := s.DB.NewUpdate().Model((*User)(nil)).Set("password_hash = ?", hash).Where("id = ?", userID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to set password: %w", err)
	}
	return nil
}
