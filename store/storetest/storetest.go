// Package storetest gives tests a fresh, migrated database on each engine doce runs on:
// a SQLite file in a temporary folder, and a new database on the PostgreSQL server that
// make test starts (DOCE_TEST_POSTGRES_URL).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for creating databases
	"github.com/uptrace/bun"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
)

// The engines, as test names.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Dialects lists the engines to run a test on.
func Dialects() []string { return []string{SQLite, Postgres} }

// Each runs fn as a subtest per engine, each with a fresh migrated store.
func Each(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(d, func(t *testing.T) { fn(t, Open(t, d)) })
	}
}

// Open returns a fresh store on dialect with every migration applied, closed at cleanup.
func Open(t testing.TB, dialect string) *store.Store {
	t.Helper()
	st := OpenEmpty(t, dialect)
	if _, err := migrations.Up(context.Background(), st.DB); err != nil {
		t.Fatal(err)
	}
	return st
}

// OpenEmpty is Open without the migrations.
func OpenEmpty(t testing.TB, dialect string) *store.Store {
	t.Helper()
	st, err := store.Open(NewDatabase(t, dialect))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewDatabase returns what store.Open takes for a new, empty database on dialect: a SQLite
// path in a temporary folder, or the URL of a database made for this test on the PostgreSQL
// server (dropped at cleanup). Without DOCE_TEST_POSTGRES_URL the PostgreSQL case is skipped,
// unless the whole stack is expected (DOCE_TEST_STACK=1, as make test sets): then it fails.
func NewDatabase(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == SQLite {
		return filepath.Join(t.TempDir(), "doce.db")
	}
	server := ServerURL(t)
	admin, err := sql.Open("pgx", server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "doce_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", server)
		if err != nil {
			return
		}
		defer admin.Close()
		// FORCE ends connections a failed test left open (PostgreSQL 13 and later).
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, _ := url.Parse(server) // ServerURL parsed it
	u.Path = "/" + name
	return u.String()
}

// ServerURL returns DOCE_TEST_POSTGRES_URL, the test cluster's administrative database, or
// skips (fails under DOCE_TEST_STACK=1) when it is not set.
func ServerURL(t testing.TB) string {
	t.Helper()
	server := os.Getenv("DOCE_TEST_POSTGRES_URL")
	if server == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_POSTGRES_URL is not set: make test starts a PostgreSQL server for the tests")
		}
		t.Skip("no PostgreSQL server: set DOCE_TEST_POSTGRES_URL (make test starts one)")
	}
	if _, err := url.Parse(server); err != nil {
		t.Fatalf("DOCE_TEST_POSTGRES_URL is not a URL: %v", err)
	}
	return server
}

// Contents returns everything st's database holds, for tests that assert a secret is not in
// it: on SQLite the bytes of the file (after a checkpoint, so the write-ahead log is in it,
// freed pages included), on PostgreSQL the text of every row of every table.
func Contents(t testing.TB, st *store.Store) []byte {
	t.Helper()
	ctx := context.Background()
	if !st.IsPostgres() {
		if _, err := st.DB.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		var file string
		if err := st.DB.QueryRowContext(ctx, "SELECT file FROM pragma_database_list WHERE name = 'main'").Scan(&file); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	var tables []string
	if err := st.DB.NewRaw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'").Scan(ctx, &tables); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, table := range tables {
		var rows []string
		if err := st.DB.NewRaw("SELECT CAST(t AS TEXT) FROM ? AS t", bun.Ident(table)).Scan(ctx, &rows); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, r := range rows {
			all = append(append(all, r...), '\n')
		}
	}
	return all
}

// Warm opens n connections of st's pool (at most all it may hold) at once and returns them to
// it, so goroutines a race test starts together reach the database together instead of one
// connect apart.
func Warm(t testing.TB, st *store.Store, n int) {
	t.Helper()
	if limit := st.DB.Stats().MaxOpenConnections; limit > 0 {
		n = min(n, limit)
	}
	conns := make([]*sql.Conn, 0, n)
	for range n {
		c, err := st.DB.DB.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
}
