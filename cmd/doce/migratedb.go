package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
)

const migrateDBUsage = `doce migrate-db --from sqlite:PATH --to postgres://USER:PASSWORD@HOST:5432/DB

Copies a SQLite installation into an empty PostgreSQL database: applies the migrations there,
copies every table in one transaction (keys and tokens stay Vault ciphertext) and compares the
row counts per table before committing. Stop doce first; then set DOCE_DATABASE_URL to the
target and start it again. A target that holds any row is refused.
`

// runMigrateDB is `doce migrate-db`.
func runMigrateDB(ctx context.Context, log *slog.Logger, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("migrate-db", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "sqlite:PATH of the installation to copy")
	to := fs.String("to", "", "postgres:// URL of the empty target database")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return fmt.Errorf("migrate-db: %s\n%s", usageError(err, fs.Args()), migrateDBUsage)
	}
	path, ok := strings.CutPrefix(*from, "sqlite:")
	if !ok || path == "" {
		return fmt.Errorf("migrate-db: --from must be sqlite:PATH, the SQLite file of the installation\n%s", migrateDBUsage)
	}
	if !store.IsPostgres(*to) {
		return fmt.Errorf("migrate-db: --to must be a postgres:// URL\n%s", migrateDBUsage)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("migrate-db: the source: %w", err)
	}

	src, err := store.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := migrations.CheckCurrent(ctx, src.DB); err != nil {
		return fmt.Errorf("migrate-db: the source is behind this doce (run doce migrate with DOCE_DB_PATH=%s first): %w", path, err)
	}
	dst, err := store.Open(*to)
	if err != nil {
		return err
	}
	defer dst.Close()
	applied, err := migrations.Up(ctx, dst.DB)
	if err != nil {
		return err
	}
	log.Info("target migrated", "database", store.Redact(*to), "migrations", len(applied))

	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		return fmt.Errorf("migrate-db: %w", err)
	}
	fmt.Fprintf(out, "%-24s %8s %8s\n", "table", "source", "target")
	for _, c := range counts {
		fmt.Fprintf(out, "%-24s %8d %8d\n", c.Table, c.Source, c.Target)
	}
	fmt.Fprintf(out, "copied %s to %s; start doce with DOCE_DATABASE_URL set to it\n", path, store.Redact(*to))
	return nil
}

func usageError(err error, rest []string) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("unexpected arguments %q", rest)
}
