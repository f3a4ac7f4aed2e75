package store

import (
	"context"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Roles a user can have.
const (
	RoleAdmin = "admin"
	RoleUser  = "user"
)

// User is a person who signs in.
type User struct {
	bun.BaseModel `bun:"table:users,alias:u"`

	ID           string     `bun:"id,pk"`
	Username     string     `bun:"username"`
	PasswordHash string     `bun:"password_hash"`
	Role         string     `bun:"role"`
	CreatedAt    time.Time  `bun:"created_at"`
	DisabledAt   *time.Time `bun:"disabled_at"`
}

// CountUsers returns how many users exist; zero means first-run setup is open.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	n, err := s.DB.NewSelect().Model((*User)(nil)).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: unable to count users: %w", err)
	}
	return int(n), nil
}

// CreateUser inserts u, filling its id and creation time.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	u.ID = NewID()
	u.CreatedAt = time.Now().UTC()
	if _, err := s.DB.NewInsert().Model(u).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: unable to create user: %w", err)
	}
	return nil
}

// AddUser creates u as actorID (an administrator) asked, and audits it.
func (s *Store) AddUser(ctx context.Context, u *User, actorID string) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		u.ID = NewID()
		u.CreatedAt = time.Now().UTC()
		if _, err := tx.NewInsert().Model(u).Exec(ctx); err != nil {
			if isUniqueViolation(err) {
				return ErrConflict
			}
			return fmt.Errorf("store: unable to create user: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: actorID, Action: "user.create", TargetType: "user", TargetID: u.ID, Detail: "username=" + u.Username + " role=" + u.Role})
	})
}

// CreateFirstAdmin creates u as an admin only while no user exists, in one transaction, so two
// racing first-run forms cannot both create an admin.
func (s *Store) CreateFirstAdmin(ctx context.Context, u *User) error {
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.serializeWrites(ctx, tx, "users"); err != nil {
			return err
		}
		n, err := tx.NewSelect().Model((*User)(nil)).Count(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to count users: %w", err)
		}
		if n > 0 {
			return ErrConflict
		}
		u.ID = NewID()
		u.Role = RoleAdmin
		u.CreatedAt = time.Now().UTC()
		if _, err := tx.NewInsert().Model(u).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to create admin: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: u.ID, Action: "user.create", TargetType: "user", TargetID: u.ID, Detail: "username=" + u.Username + " role=admin (first run)"})
	})
}

// UserByUsername returns the user with that name, whatever its case (usernames are ASCII, so
// SQL's lower() folds them as Go's would; an index on lower(username) keeps them unique).
func (s *Store) UserByUsername(ctx context.Context, username string) (*User, error) {
	u := new(User)
	if err := s.DB.NewSelect().Model(u).Where("lower(username) = lower(?)", username).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return u, nil
}

// UserByID returns the user with that id.
func (s *Store) UserByID(ctx context.Context, id string) (*User, error) {
	u := new(User)
	if err := s.DB.NewSelect().Model(u).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return u, nil
}

// ImportUser inserts u as it is, id and creation time included (legacy import).
func (s *Store) ImportUser(ctx context.Context, u *User) error {
	if _, err := s.DB.NewInsert().Model(u).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return ErrConflict
		}
		return fmt.Errorf("store: unable to import user: %w", err)
	}
	return nil
}

// Users lists every user, oldest first.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	var us []User
	if err := s.DB.NewSelect().Model(&us).Order("created_at").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list users: %w", err)
	}
	return us, nil
}

// DisableUser stops a user signing in and ends their sessions.
func (s *Store) DisableUser(ctx context.Context, id, actorID string) error {
	now := time.Now().UTC()
	return s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewUpdate().Model((*User)(nil)).Set("disabled_at = ?", now).Where("id = ?", id).Where("disabled_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to disable user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.NewDelete().Model((*Session)(nil)).Where("user_id = ?", id).Exec(ctx); err != nil {
			return fmt.Errorf("store: unable to end sessions: %w", err)
		}
		return s.Audit(ctx, tx, AuditEvent{ActorID: actorID, Action: "user.disable", TargetType: "user", TargetID: id})
	})
}
