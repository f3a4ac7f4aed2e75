package migrations_test

import (
	"context"
	"reflect"
	"slices"
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
			if n := len(schema(t, st)); n < 3 {
				t.Fatalf("%d tables after up", n)
			}
			down, err := migrations.Down(ctx, st.DB)
			if err != nil || len(down) != len(up) {
				t.Fatalf("down: %v %v", down, err)
			}
			if err := migrations.CheckCurrent(ctx, st.DB); err == nil {
				t.Fatal("CheckCurrent passes on a rolled-back database")
			}
			if left := schema(t, st); len(left) != 0 {
				t.Fatalf("tables left after rolling back: %v", left)
			}
			if again, err := migrations.Up(ctx, st.DB); err != nil || len(again) != len(up) {
				t.Fatalf("up again: %v %v", again, err)
			}
		})
	}
}

// TestSameSchemaOnBothEngines: after every migration both engines have the same tables with
// the same columns, so the store's code and doce migrate-db see one schema.
func TestSameSchemaOnBothEngines(t *testing.T) {
	ctx := context.Background()
	var schemas []map[string][]string
	for _, d := range storetest.Dialects() {
		st := storetest.OpenEmpty(t, d)
		if _, err := migrations.Up(ctx, st.DB); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		schemas = append(schemas, schema(t, st))
	}
	if len(schemas[0]) == 0 {
		t.Fatal("no tables")
	}
	if !reflect.DeepEqual(schemas[0], schemas[1]) {
		t.Fatalf("the schemas differ:\n%s: %v\n%s: %v", storetest.Dialects()[0], schemas[0], storetest.Dialects()[1], schemas[1])
	}
}

// schema maps each of doce's tables (not bun's own) to its column names, sorted.
func schema(t *testing.T, st *store.Store) map[string][]string {
	t.Helper()
	type col struct {
		Table  string `bun:"table_name"`
		Column string `bun:"column_name"`
	}
	q := `SELECT m.name AS table_name, c.name AS column_name FROM sqlite_master AS m, pragma_table_info(m.name) AS c
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`
	if st.IsPostgres() {
		q = `SELECT c.table_name, c.column_name FROM information_schema.columns AS c
			JOIN information_schema.tables AS t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
			WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'`
	}
	var cols []col
	if err := st.DB.NewRaw(q).Scan(context.Background(), &cols); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range cols {
		if !strings.HasPrefix(c.Table, "bun_migration") {
			out[c.Table] = append(out[c.Table], c.Column)
		}
	}
	for _, cs := range out {
		slices.Sort(cs)
	}
	return out
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
