package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// UserQuota is what an administrator set for one user over the defaults: nil keeps the
// default, 0 means no limit.
type UserQuota struct {
	bun.BaseModel `bun:"table:user_quotas"`

	UserID        string    `bun:"user_id,pk"`
	Projects      *int      `bun:"projects"`
	Running       *int      `bun:"running"`
	CreatePerHour *int      `bun:"create_per_hour"`
	UpdatedAt     time.Time `bun:"updated_at"`
}

// IsDefault reports whether q overrides nothing.
func (q *UserQuota) IsDefault() bool {
	return q.Projects == nil && q.Running == nil && q.CreatePerHour == nil
}

// UserQuota is the user's own quotas; a zero UserQuota (all defaults) when none were set.
func (s *Store) UserQuota(ctx context.Context, userID string) (UserQuota, error) {
	q := UserQuota{UserID: userID}
	err := notFound(s.DB.NewSelect().Model(&q).WherePK().Scan(ctx))
	if errors.Is(err, ErrNotFound) {
		return UserQuota{UserID: userID}, nil
	}
	if err != nil {
		return UserQuota{}, fmt.Errorf("store: unable to read the user's quotas: %w", err)
	}
	return q, nil
}

// UserQuotas lists the users' own quotas by user id.
func (s *Store) UserQuotas(ctx context.Context) (map[string]UserQuota, error) {
	var qs []UserQuota
	if err := s.DB.NewSelect().Model(&qs).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list quotas: %w", err)
	}
	out := make(map[string]UserQuota, len(qs))
	for _, q := range qs {
		out[q.UserID] = q
	}
	return out, nil
}

// SetUserQuota stores q as the user's quotas; one that overrides nothing removes them.
func (s *Store) SetUserQuota(ctx context.Context, q UserQuota) error {
	if q.IsDefault() {
		if _, err := s.DB.NewDelete().Model((*UserQuota)(nil)).Where("user_id = ?", q.UserID).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to remove the user's quotas: %w", err)
		}
		return nil
	}
	q.UpdatedAt = time.Now().UTC()
	_, err := s.DB.NewInsert().Model(&q).On("CONFLICT (user_id) DO UPDATE").
		Set("projects = EXCLUDED.projects").Set("running = EXCLUDED.running").
		Set("create_per_hour = EXCLUDED.create_per_hour").Set("updated_at = EXCLUDED.updated_at").Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to set the user's quotas: %w", err)
	}
	return nil
}
