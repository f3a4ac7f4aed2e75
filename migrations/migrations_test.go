package migrations_test

import (
	"context"
	"strings"
	"testing"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestUpDownUp applies every migration, rolls the group back, and applies it again, on each
// engine: the down files undo what the up files do, so an upgrade can be rolled back, and every
// file is SQL both engines accept.
func TestUpDownUp(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			st := storetest.OpenEmpty(t, d)
			up, err := migrations.Up(ctx, st.DB)
			if err != nil || len(up) != len(migrations.Migrations.Sorted()) {
				t.Fatalf("up: %v %v", up, err)
			}
			if err := migrations.CheckCurrent(ctx, st.DB); err != nil {
				t.Fatal(err)
			}
			if n := countTables(t, st); n != 3 {
				t.Fatalf("%d of the tables users, projects, provider_connections after up", n)
			}
			down, err := migrations.Down(ctx, st.DB)
			if err != nil || len(down) != len(up) {
				t.Fatalf("down: %v %v", down, err)
			}
			if err := migrations.CheckCurrent(ctx, st.DB); err == nil {
				t.Fatal("CheckCurrent passes on a rolled-back database")
			}
			if n := countTables(t, st); n != 0 {
				t.Fatalf("%d tables left after rolling back", n)
			}
			if again, err := migrations.Up(ctx, st.DB); err != nil || len(again) != len(up) {
				t.Fatalf("up again: %v %v", again, err)
			}
		})
	}
}

func countTables(t *testing.T, st *store.Store) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users','projects','provider_connections')"
	if st.IsPostgres() {
		q = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('users','projects','provider_connections')"
	}
	var n int
	if err := st.DB.NewRaw(q).Scan(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUsernamesNocaseRefusesDuplicates: a database holding Alice and alice is not migrated to
// case-insensitive usernames; the error names both, and once one is renamed the migration runs.
func TestUsernamesNocaseRefusesDuplicates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		testUsernamesNocaseRefusesDuplicates(t, st)
	})
}

func testUsernamesNocaseRefusesDuplicates(t *testing.T, st *store.Store) {
	ctx := context.Background()
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
	_, err := migrations.Up(ctx, st.DB)
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
