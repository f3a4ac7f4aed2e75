package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// Scopes an API token can have: read allows only safe methods (GET, HEAD); write everything the
// user may do except manage accounts; admin (an administrator's only) everything, account
// management included. No token manages tokens.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// APITokenPrefix starts every personal access token, so one pasted into the wrong place is easy
// to recognise (and for secret scanners to find).
const APITokenPrefix = "doce_pat_"

// How often a token's use is written down: last_used_at at most once a minute (so a busy script
// does not make a write per request), and an audit event at most once an hour per token (so the
// audit log shows that a token is in use without one line per request).
const (
	tokenUseResolution   = time.Minute
	tokenAuditResolution = time.Hour
)

// APIToken is a personal access token for the JSON API. Only its hash is stored: the token itself
// is shown once, when it is made.
type APIToken struct {
	bun.BaseModel `bun:"table:api_tokens"`

	ID            string     `bun:"id,pk"`
	UserID        string     `bun:"user_id"`
	Name          string     `bun:"name"`
	TokenHash     string     `bun:"token_hash"`
	DisplayPrefix string     `bun:"display_prefix"`
	Scope         string     `bun:"scope"`
	CreatedAt     time.Time  `bun:"created_at"`
	ExpiresAt     time.Time  `bun:"expires_at"`
	LastUsedAt    *time.Time `bun:"last_used_at"`
	LastAuditedAt *time.Time `bun:"last_audited_at"`
	RevokedAt     *time.Time `bun:"revoked_at"`
}

// Expired reports whether the token has passed its expiry at now.
func (t *APIToken) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// CreateAPIToken makes a token for userID and returns it with the secret to hand over once.
func (s *Store) CreateAPIToken(ctx context.Context, userID, name, scope string, expiresAt time.Time) (string, *APIToken, error) {
	if scope != ScopeRead && scope != ScopeWrite && scope != ScopeAdmin {
		return "", nil, fmt.Errorf("store: unknown token scope %q", scope)
	}
	secret := APITokenPrefix + base64.RawURLEncoding.EncodeToString(RandomToken(32))
	t := &APIToken{
		ID: NewID(), UserID: userID, Name: name, TokenHash: hashToken(secret),
		// The prefix plus four characters: enough to tell tokens apart, far too little to guess one.
		DisplayPrefix: secret[:len(APITokenPrefix)+4],
		Scope:         scope, CreatedAt: time.Now().UTC(), ExpiresAt: expiresAt.UTC(),
	}
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(t).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to create API token: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: userID, Action: "api_token.create", TargetType: "api_token", TargetID: t.ID,
			Detail: fmt.Sprintf("%s, %s, expires %s", t.Name, t.Scope, t.ExpiresAt.Format(time.DateOnly))})
	})
	if err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// APITokens lists userID's tokens that are not revoked, newest first; expired ones are included
// so their owner sees why a script stopped working.
func (s *Store) APITokens(ctx context.Context, userID string) ([]APIToken, error) {
	ts := []APIToken{}
	err := s.DB.NewSelect().Model(&ts).Where("user_id = ?", userID).Where("revoked_at IS NULL").Order("created_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list API tokens: %w", err)
	}
	return ts, nil
}

// RevokeAPIToken revokes userID's token id at once. ErrNotFound when it is not theirs or already
// revoked.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, id string) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*APIToken)(nil)).Set("revoked_at = ?", time.Now().UTC()).
			Where("id = ?", id).Where("user_id = ?", userID).Where("revoked_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to revoke API token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: userID, Action: "api_token.revoke", TargetType: "api_token", TargetID: id})
	})
}

// UserByAPIToken returns the token that secret is and its user, when the token is live: not
// revoked, not expired, and its user not disabled. Anything else is ErrNotFound, so a caller
// learns nothing about tokens it does not hold.
func (s *Store) UserByAPIToken(ctx context.Context, secret string) (*User, *APIToken, error) {
	if !strings.HasPrefix(secret, APITokenPrefix) {
		return nil, nil, ErrNotFound
	}
	now := time.Now().UTC()
	t := new(APIToken)
	err := s.DB.NewSelect().Model(t).Where("token_hash = ?", hashToken(secret)).
		Where("revoked_at IS NULL").Where("expires_at > ?", now).Scan(ctx)
	if err != nil {
		return nil, nil, notFound(err)
	}
	u := new(User)
	if err := s.DB.NewSelect().Model(u).Where("id = ?", t.UserID).Where("disabled_at IS NULL").Scan(ctx); err != nil {
		return nil, nil, notFound(err)
	}
	return u, t, nil
}

// RecordAPITokenUse notes that t was used at now: last_used_at, and an audit event when none was
// written for this token in the last hour. It writes nothing when t was used within the last
// minute, so it is cheap to call on every request. Both updates are conditional, so concurrent
// requests write one event, not one each.
func (s *Store) RecordAPITokenUse(ctx context.Context, t *APIToken, now time.Time) error {
	now = now.UTC()
	if t.LastUsedAt != nil && now.Sub(*t.LastUsedAt) < tokenUseResolution {
		return nil
	}
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*APIToken)(nil)).Set("last_used_at = ?", now).Where("id = ?", t.ID).
			WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
				return q.Where("last_used_at IS NULL").WhereOr("last_used_at < ?", now.Add(-tokenUseResolution))
			}).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to record API token use: %w", err)
		}
		res, err := tx.NewUpdate().Model((*APIToken)(nil)).Set("last_audited_at = ?", now).Where("id = ?", t.ID).
			WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
				return q.Where("last_audited_at IS NULL").WhereOr("last_audited_at < ?", now.Add(-tokenAuditResolution))
			}).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to record API token use: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: t.UserID, Action: "api_token.use", TargetType: "api_token", TargetID: t.ID,
			Detail: t.Name + ", " + t.Scope})
	})
}
