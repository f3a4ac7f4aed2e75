// Package migrations holds doce's database schema as ordered SQL files, embedded in the binary.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

//go:embed *.sql
var files embed.FS

// Migrations is the ordered list bun applies.
var Migrations = migrate.NewMigrations()

func init() {
	if err := Migrations.Discover(files); err != nil {
		panic(err)
	}
}

// Up applies every migration not yet applied and returns the names it applied.
func Up(ctx context.Context, db *bun.DB) ([]string, error) {
	// A migration that fails (one that refuses the data it finds, say) stays unapplied, so it
	// runs again once the operator has fixed what it named.
	m := migrate.NewMigrator(db, Migrations, migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("migrations: unable to init: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("migrations: unable to lock: %w", err)
	}
	defer m.Unlock(ctx) //nolint:errcheck // the lock row is best effort; a failed unlock shows on the next run

	group, err := m.Migrate(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: unable to migrate: %w", err)
	}
	var applied []string
	for _, mig := range group.Migrations {
		applied = append(applied, mig.Name+"_"+mig.Comment)
	}
	return applied, nil
}

// CheckCurrent fails when migrations are not applied, so a server never runs on an old schema.
func CheckCurrent(ctx context.Context, db *bun.DB) error {
	m := migrate.NewMigrator(db, Migrations)
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("migrations: unable to init: %w", err)
	}
	ms, err := m.MigrationsWithStatus(ctx)
	if err != nil {
		return fmt.Errorf("migrations: unable to list: %w", err)
	}
	if pending := ms.Unapplied(); len(pending) > 0 {
		return fmt.Errorf("migrations: the database lacks %d migration(s), starting with %s: run `doce migrate`", len(pending), pending[0].Name)
	}
	return nil
}

// Down rolls back the last group of migrations applied and returns the names it rolled back.
func Down(ctx context.Context, db *bun.DB) ([]string, error) {
	m := migrate.NewMigrator(db, Migrations)
	if err := m.Init(ctx); err != nil {
		return nil, fmt.Errorf("migrations: unable to init: %w", err)
	}
	if err := m.Lock(ctx); err != nil {
		return nil, fmt.Errorf("migrations: unable to lock: %w", err)
	}
	defer m.Unlock(ctx) //nolint:errcheck // as in Up
	group, err := m.Rollback(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: unable to roll back: %w", err)
	}
	var names []string
	for _, mig := range group.Migrations {
		names = append(names, mig.Name+"_"+mig.Comment)
	}
	return names, nil
}
