package store

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// devicesPerUser is how many known browsers a user keeps; signing in from one more forgets the
// oldest, so a script that signs in without keeping cookies cannot grow the table.
const devicesPerUser = 20

// LoginDevice is a browser a user signed in from. Its cookie proves nothing by itself (a sign-in
// still needs the password); it only lets that browser's sign-ins be throttled apart from
// everyone else's, so strangers' guesses never lock the owner out.
type LoginDevice struct {
	bun.BaseModel `bun:"table:login_devices"`

	TokenHash string    `bun:"token_hash,pk"`
	ID        string    `bun:"id"`
	UserID    string    `bun:"user_id"`
	CreatedAt time.Time `bun:"created_at"`
}

// CreateLoginDevice records a new browser of userID's and returns the token for its cookie.
func (s *Store) CreateLoginDevice(ctx context.Context, userID string) (string, error) {
	token := base64.RawURLEncoding.EncodeToString(RandomToken(32))
	d := &LoginDevice{TokenHash: hashToken(token), ID: NewID(), UserID: userID, CreatedAt: time.Now().UTC()}
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(d).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to record a login device: %w", err)
		}
		keep := tx.NewSelect().Model((*LoginDevice)(nil)).Column("id").Where("user_id = ?", userID).
			Order("created_at DESC").Limit(devicesPerUser)
		if _, err := tx.NewDelete().Model((*LoginDevice)(nil)).Where("user_id = ?", userID).Where("id NOT IN (?)", keep).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to forget old login devices: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// LoginDeviceOf returns the id of the device token names when it is userID's; ErrNotFound
// otherwise.
func (s *Store) LoginDeviceOf(ctx context.Context, token, userID string) (string, error) {
	d := new(LoginDevice)
	if err := s.DB.NewSelect().Model(d).Where("token_hash = ?", hashToken(token)).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return "", notFound(err)
	}
	return d.ID, nil
}
