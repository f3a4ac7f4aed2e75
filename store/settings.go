package store

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// UserSettings holds a user's preferences.
type UserSettings struct {
	bun.BaseModel `bun:"table:user_settings"`

	UserID                  string     `bun:"user_id,pk"`
	PreferredProviderID     string     `bun:"preferred_provider_id,nullzero"`
	DefaultModel            string     `bun:"default_model,nullzero"`
	ProviderAuthInitialized bool       `bun:"provider_auth_initialized"`
	MigrationCompletedAt    *time.Time `bun:"migration_completed_at"`
	UpdatedAt               time.Time  `bun:"updated_at"`
}

// Settings returns a user's settings, or empty settings when none are stored yet.
func (s *Store) Settings(ctx context.Context, userID string) (*UserSettings, error) {
	us := new(UserSettings)
	err := s.DB.NewSelect().Model(us).Where("user_id = ?", userID).Scan(ctx)
	if err := notFound(err); errors.Is(err, ErrNotFound) {
		return &UserSettings{UserID: userID}, nil
	} else if err != nil {
		return nil, err
	}
	return us, nil
}
