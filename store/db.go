// Package store holds doce's bun models and queries, one file per table.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
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

// Open opens (creating when missing) the SQLite database at path.
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
func Open(path string) (*Store, error) {
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
	sqldb.SetMaxOpenConns(8)
	sqldb.SetMaxIdleConns(8)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: unable to open %s: %w", path, err)
	}
	return &Store{DB: db}, nil
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

// isUniqueViolation reports whether err is SQLite refusing a duplicate key.
func isUniqueViolation(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// Backup writes a consistent copy of the database to path while doce runs (SQLite's
// VACUUM INTO). path must not exist.
func (s *Store) Backup(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: %s exists; back up to a new file", path)
	}
	if _, err := s.DB.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		return fmt.Errorf("store: unable to back up to %s: %w", path, err)
	}
	return nil
}
