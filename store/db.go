// Package store holds doce's bun models and queries, one file per table.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotFound is returned when a row does not exist or belongs to someone else.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a unique constraint refuses a row.
var ErrConflict = errors.New("store: already exists")

// Store is the database handle every query hangs off.
type Store struct {
	DB *bun.DB
}

// Open opens the database target names: a postgres:// (or postgresql://) URL is PostgreSQL;
// anything else is the path of a SQLite file, created when missing (a leading "sqlite:" is
// dropped).
func Open(target string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if IsPostgres(target) {
		return openPostgres(target, o.maxConns)
	}
	return openSQLite(strings.TrimPrefix(target, "sqlite:"), o.maxConns)
}

// Option changes how Open connects.
type Option func(*options)

type options struct{ maxConns int }

// MaxConns caps the connection pool at n (DOCE_DATABASE_MAX_CONNS); 0 keeps the default.
func MaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// IsPostgres reports whether target names a PostgreSQL database rather than a SQLite file.
func IsPostgres(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Redact returns target with any password replaced, for logs and errors.
func Redact(target string) string {
	if !IsPostgres(target) {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// openSQLite opens (creating when missing) the SQLite database at path.
//
// The pragmas are deliberate:
//   - journal_mode=WAL lets the web tier read while the worker writes.
//   - busy_timeout=5000 makes a writer wait up to 5 s for the lock instead of failing at once;
//     the web and worker processes share one file.
//   - synchronous=NORMAL is durable in WAL mode except for the last commits on power loss,
//     and avoids an fsync per commit.
//   - foreign_keys=1 because SQLite leaves them off by default and we rely on ON DELETE CASCADE.
//   - _txlock=immediate takes the write lock at BEGIN, so two writers never deadlock upgrading
//     a read lock.
func openSQLite(path string, maxConns int) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: unable to create the database folder: %w", err)
	}
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	sqldb, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, fmt.Errorf("store: unable to open %s: %w", path, err)
	}
	// SQLite has one writer at a time; a small pool keeps readers concurrent without piling up
	// writers that would only wait on busy_timeout.
	if maxConns <= 0 {
		maxConns = 8
	}
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: unable to open %s: %w", path, err)
	}
	return &Store{DB: db}, nil
}

// openPostgres connects to PostgreSQL through pgx's database/sql driver (pure Go).
//
//   - The simple query protocol: bun interpolates every argument itself, so each query arrives
//     as finished text; pgx's default would prepare (and cache) every distinct text, a second
//     round trip for nothing.
//   - TimeZone=UTC: doce stores times as TIMESTAMP (without time zone, as on SQLite) and bun
//     writes them in UTC; a UTC session makes anything PostgreSQL computes agree.
//   - The pool: every doce process holds up to maxConns connections (default 10); the server's
//     max_connections must cover the sum over all processes (docs/operations.md).
func openPostgres(target string, maxConns int) (*Store, error) {
	cfg, err := pgx.ParseConfig(target)
	if err != nil {
		// pgx's message quotes the URL with its password redacted.
		return nil, fmt.Errorf("store: not a PostgreSQL URL (postgres://user:password@host:5432/dbname?sslmode=...): %w", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.RuntimeParams["timezone"] = "UTC"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "doce"
	}
	sqldb := stdlib.OpenDB(*cfg)
	if maxConns <= 0 {
		maxConns = 10
	}
	sqldb.SetMaxOpenConns(maxConns)
	sqldb.SetMaxIdleConns(maxConns)
	db := bun.NewDB(sqldb, pgdialect.New())
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: unable to connect to %s: %w", Redact(target), err)
	}
	return &Store{DB: db}, nil
}

// IsPostgres reports whether the store is on PostgreSQL.
func (s *Store) IsPostgres() bool { return s.DB.Dialect().Name() == dialect.PG }

// serializeWrites makes the transactions that call it for table run one after another, for the
// few that read a table and then write what they read (count users, then add the first admin;
// read a failure count, then store it plus one). SQLite already does this for every write
// transaction (_txlock=immediate takes the one write lock at BEGIN). PostgreSQL, at READ
// COMMITTED, would let two such transactions read the same state and both write: SHARE ROW
// EXCLUSIVE conflicts with itself and with the lock every INSERT, UPDATE and DELETE takes, so
// the second waits until the first commits and then reads what it wrote. Readers never wait.
func (s *Store) serializeWrites(ctx context.Context, tx bun.Tx, table string) error {
	if !s.IsPostgres() {
		return nil
	}
	if _, err := tx.ExecContext(ctx, "LOCK TABLE ? IN SHARE ROW EXCLUSIVE MODE", bun.Ident(table)); err != nil {
		return fmt.Errorf("store: unable to lock %s: %w", table, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.DB.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.DB.PingContext(ctx) }

// NewID returns a new time-ordered row id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// RandomToken returns n random bytes, for session tokens and server passwords.
func RandomToken(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms.
	return b
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// isUniqueViolation reports whether err is the database refusing a duplicate key.
func isUniqueViolation(err error) bool {
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		return serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	var pgerr *pgconn.PgError
	return errors.As(err, &pgerr) && pgerr.Code == "23505" // unique_violation
}

// Backup writes a consistent copy of the database to path while doce runs (SQLite's
// VACUUM INTO). path must not exist.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.IsPostgres() {
		return errors.New("store: doce backup copies a SQLite database; back up PostgreSQL with its own tools (pg_dump, or the managed service's snapshots)")
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: %s exists; back up to a new file", path)
	}
	if _, err := s.DB.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("store: unable to back up to %s: %w", path, err)
	}
	return nil
}
