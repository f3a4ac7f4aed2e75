package migrations_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
)

// TestUpDownUp applies every migration, rolls the group back, and applies it again: the down
// files undo what the up files do, so an upgrade can be rolled back.
func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	up, err := migrations.Up(ctx, st.DB)
	if err != nil || len(up) != len(migrations.Migrations.Sorted()) {
		t.Fatalf("up: %v %v", up, err)
	}
	if err := migrations.CheckCurrent(ctx, st.DB); err != nil {
		t.Fatal(err)
	}
	down, err := migrations.Down(ctx, st.DB)
	if err != nil || len(down) != len(up) {
		t.Fatalf("down: %v %v", down, err)
	}
	if err := migrations.CheckCurrent(ctx, st.DB); err == nil {
		t.Fatal("CheckCurrent passes on a rolled-back database")
	}
	var tables int
	if err := st.DB.NewRaw("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users','projects','provider_connections')").Scan(ctx, &tables); err != nil || tables != 0 {
		t.Fatalf("%d tables left after rolling back (%v)", tables, err)
	}
	if again, err := migrations.Up(ctx, st.DB); err != nil || len(again) != len(up) {
		t.Fatalf("up again: %v %v", again, err)
	}
}

// TestUsernamesNocaseRefusesDuplicates: a database holding Alice and alice is not migrated to
// case-insensitive usernames; the error names both, and once one is renamed the migration runs.
func TestUsernamesNocaseRefusesDuplicates(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := migrations.Up(ctx, st.DB); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before the migration, with two names differing in case.
	for _, q := range []string{
		"DROP INDEX users_username_nocase",
		"DELETE FROM bun_migrations WHERE name = '20261201300001'",
		"INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u1', 'Alice', 'x', 'user', CURRENT_TIMESTAMP), ('u2', 'alice', 'x', 'user', CURRENT_TIMESTAMP)",
	} {
		if _, err := st.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, err = migrations.Up(ctx, st.DB)
	if err == nil || !strings.Contains(err.Error(), "Alice") || !strings.Contains(err.Error(), "alice") || !strings.Contains(err.Error(), "rename") {
		t.Fatalf("migrating duplicates: %v, want a refusal naming Alice and alice", err)
	}
	if _, err := st.DB.ExecContext(ctx, "UPDATE users SET username = 'alice2' WHERE id = 'u2'"); err != nil {
		t.Fatal(err)
	}
	if applied, err := migrations.Up(ctx, st.DB); err != nil || len(applied) != 1 {
		t.Fatalf("after renaming: %v %v", applied, err)
	}
	if _, err := st.DB.ExecContext(ctx, "INSERT INTO users (id, username, password_hash, role, created_at) VALUES ('u3', 'ALICE', 'x', 'user', CURRENT_TIMESTAMP)"); err == nil {
		t.Error("ALICE inserted next to Alice")
	}
}
