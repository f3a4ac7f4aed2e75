package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Kinds of login throttle: by the username tried (whether or not it exists, so the answer never
// tells) and by the client address.
const (
	ThrottleAccount = "account"
	ThrottleAddress = "address"
)

// LoginThrottle counts failed sign-ins for one account or one client address. The rows live in
// the database so every web process sharing it agrees on who is locked out.
type LoginThrottle struct {
	bun.BaseModel `bun:"table:login_throttles"`

	Kind          string     `bun:"kind,pk" json:"kind"`
	Subject       string     `bun:"subject,pk" json:"subject"`
	Failures      int        `bun:"failures" json:"failures"`
	LockedUntil   *time.Time `bun:"locked_until" json:"lockedUntil,omitempty"`
	LastFailureAt time.Time  `bun:"last_failure_at" json:"lastFailureAt"`
}

// ThrottleKey names one throttle row.
type ThrottleKey struct{ Kind, Subject string }

// Backoff says when failures start locking and for how long: the Free-th failure in a row locks
// for Base, each further one doubles it, up to Max. A streak ends Forget after its last failure.
type Backoff struct {
	Free      int
	Base, Max time.Duration
	Forget    time.Duration
}

// lockFor is how long the n-th failure in a row locks for (0: not yet).
func (b Backoff) lockFor(n int) time.Duration {
	if n < b.Free {
		return 0
	}
	d := b.Base
	for i := b.Free; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// LoginLockedFor returns how long the longest current lockout among keys still lasts.
func (s *Store) LoginLockedFor(ctx context.Context, now time.Time, keys ...ThrottleKey) (time.Duration, error) {
	var longest time.Duration
	for _, k := range keys {
		row := new(LoginThrottle)
		err := s.DB.NewSelect().Model(row).Where("kind = ? AND subject = ?", k.Kind, k.Subject).Scan(ctx)
		if errors.Is(notFound(err), ErrNotFound) {
			continue
		} else if err != nil {
			return 0, fmt.Errorf("store: unable to read login throttle: %w", err)
		}
		if row.LockedUntil != nil && row.LockedUntil.After(now) {
			longest = max(longest, row.LockedUntil.Sub(now))
		}
	}
	return longest, nil
}

// RecordLoginFailure counts a failed sign-in against each key under its backoff and returns the
// rows that became locked by it, for the audit log.
func (s *Store) RecordLoginFailure(ctx context.Context, now time.Time, policy map[string]Backoff, keys ...ThrottleKey) ([]LoginThrottle, error) {
	var locked []LoginThrottle
	now = now.UTC()
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		locked = nil
		if err := s.serializeWrites(ctx, tx, "login_throttles"); err != nil {
			return err
		}
		for _, k := range keys {
			b := policy[k.Kind]
			row := &LoginThrottle{Kind: k.Kind, Subject: k.Subject}
			err := tx.NewSelect().Model(row).WherePK().Scan(ctx)
			switch {
			case errors.Is(notFound(err), ErrNotFound):
			case err != nil:
				return fmt.Errorf("store: unable to read login throttle: %w", err)
			case now.Sub(row.LastFailureAt) > b.Forget:
				row.Failures, row.LockedUntil = 0, nil
			}
			row.Failures++
			row.LastFailureAt = now
			if d := b.lockFor(row.Failures); d > 0 {
				until := now.Add(d)
				row.LockedUntil = &until
				locked = append(locked, *row)
			}
			if _, err := tx.NewInsert().Model(row).
				On("CONFLICT (kind, subject) DO UPDATE").
				Set("failures = EXCLUDED.failures, locked_until = EXCLUDED.locked_until, last_failure_at = EXCLUDED.last_failure_at").
				Exec(ctx); err != nil {
				return fmt.Errorf("store: unable to record a failed sign-in: %w", err)
			}
		}
		return nil
	})
	return locked, err
}

// ClearLoginThrottle forgets the failures of one account or address; false when there were none.
func (s *Store) ClearLoginThrottle(ctx context.Context, k ThrottleKey) (bool, error) {
	res, err := s.DB.NewDelete().Model((*LoginThrottle)(nil)).Where("kind = ? AND subject = ?", k.Kind, k.Subject).Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: unable to clear login throttle: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// LoginThrottles lists the accounts and addresses locked now or failing since since, most
// recent first, for administrators.
func (s *Store) LoginThrottles(ctx context.Context, now, since time.Time, limit int) ([]LoginThrottle, error) {
	rows := []LoginThrottle{}
	err := s.DB.NewSelect().Model(&rows).
		Where("locked_until > ? OR last_failure_at > ?", now.UTC(), since.UTC()).
		Order("last_failure_at DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list login throttles: %w", err)
	}
	return rows, nil
}
