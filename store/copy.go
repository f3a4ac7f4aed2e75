package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
)

// TableCount is one table's row count in a copy.
type TableCount struct {
	Table  string
	Source int
	Target int
}

// ErrTargetNotEmpty is returned by CopyTo when the target already holds rows.
var ErrTargetNotEmpty = errors.New("store: the target database is not empty")

// CopyTo copies every row of every doce table from s into target, whose schema must already be
// at the same migrations and hold no rows. Values move as they are stored: ciphertexts stay
// ciphertexts (each bound to the user, provider or project id, which move with them), ids and
// times stay the same. It runs in one transaction on the target and checks each table's count
// before committing, so a failed copy leaves the target empty. Tables come from the target's
// schema, so a table added by a later migration is copied without a change here.
func (s *Store) CopyTo(ctx context.Context, target *Store) ([]TableCount, error) {
	tables, err := target.tablesInDependencyOrder(ctx)
	if err != nil {
		return nil, err
	}
	srcTables, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	for _, t := range srcTables {
		if !slices.Contains(tables, t) {
			return nil, fmt.Errorf("store: the source has a table %s the target lacks: are both at the same migrations?", t)
		}
	}
	for _, t := range tables {
		n, err := target.DB.NewSelect().Table(t).Count(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: unable to count %s in the target: %w", t, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("%w: %s has %d rows; copy into a new, empty database", ErrTargetNotEmpty, t, n)
		}
	}

	var counts []TableCount
	err = target.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, t := range tables {
			types, err := target.columnTypes(ctx, tx, t)
			if err != nil {
				return err
			}
			n, err := s.copyTable(ctx, tx, t, types)
			if err != nil {
				return err
			}
			got, err := tx.NewSelect().Table(t).Count(ctx)
			n64 := int64(n)
			if err != nil {
				return fmt.Errorf("store: unable to count %s in the target: %w", t, err)
			}
			counts = append(counts, TableCount{Table: t, Source: n, Target: int(got)})
			if got != n64 {
				return fmt.Errorf("store: %s: copied %d rows, the target holds %d", t, n, got)
			}
		}
		if target.IsPostgres() {
			// Rows kept their ids; identity columns must continue after the highest one.
			return resetIdentities(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// copyBatch rows go in one INSERT: few round trips, well under PostgreSQL's limits.
const copyBatch = 200

// copyTable copies table's rows, ids included, and returns how many it read.
func (s *Store) copyTable(ctx context.Context, tx bun.Tx, table string, types map[string]string) (int, error) {
	rows, err := s.DB.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		return 0, fmt.Errorf("store: unable to read %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	idents := make([]string, len(cols))
	for i, c := range cols {
		if _, ok := types[c]; !ok {
			return 0, fmt.Errorf("store: %s.%s is not in the target: are both at the same migrations?", table, c)
		}
		idents[i] = quoteIdent(c)
	}
	head := "INSERT INTO " + quoteIdent(table) + " (" + strings.Join(idents, ", ") + ") VALUES "
	placeholders := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"

	var batch []any
	inBatch, total := 0, 0
	flush := func() error {
		if inBatch == 0 {
			return nil
		}
		q := head + strings.TrimSuffix(strings.Repeat(placeholders+", ", inBatch), ", ")
		if _, err := tx.ExecContext(ctx, q, batch...); err != nil {
			return fmt.Errorf("store: unable to write %s: %w", table, err)
		}
		batch, inBatch = batch[:0], 0
		return nil
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("store: unable to read %s: %w", table, err)
		}
		for i, c := range cols {
			v, err := convert(vals[i], types[c])
			if err != nil {
				return 0, fmt.Errorf("store: %s.%s: %w", table, c, err)
			}
			batch = append(batch, v)
		}
		inBatch++
		total++
		if inBatch == copyBatch {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: unable to read %s: %w", table, err)
	}
	return total, flush()
}

// convert turns a value as SQLite returns it into what the target column takes: SQLite keeps
// booleans as 0/1 and times as text, where PostgreSQL has types of their own.
func convert(v any, targetType string) (any, error) {
	switch {
	case v == nil:
		return nil, nil
	case targetType == "boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case int64:
			return b != 0, nil
		}
		return nil, fmt.Errorf("%v is not a boolean", v)
	case strings.HasPrefix(targetType, "timestamp"):
		switch t := v.(type) {
		case time.Time:
			return t, nil
		case string:
			return parseTime(t)
		case []byte:
			return parseTime(string(t))
		}
		return nil, fmt.Errorf("%v is not a time", v)
	}
	if b, ok := v.([]byte); ok {
		return string(b), nil
	}
	return v, nil
}

// parseTime reads a time as bun writes it to SQLite (an offset, or none for UTC).
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	t, err := time.ParseInLocation("2006-01-02 15:04:05.999999999", s, time.UTC)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time", s)
	}
	return t, nil
}

// quoteIdent quotes a table or column name read from doce's own schema (lower case, digits
// and underscores; the same quote on both engines).
func quoteIdent(name string) string { return `"` + name + `"` }

// internalTable reports tables that belong to the engine or to bun's migrator, not to doce:
// the target's migrations made its own.
func internalTable(name string) bool {
	return strings.HasPrefix(name, "sqlite_") || strings.HasPrefix(name, "bun_migration")
}

// tables lists doce's tables.
func (s *Store) tables(ctx context.Context) ([]string, error) {
	q := "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
	if s.IsPostgres() {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
	}
	var names []string
	if err := s.DB.NewRaw(q).Scan(ctx, &names); err != nil {
		return nil, fmt.Errorf("store: unable to list tables: %w", err)
	}
	return slices.DeleteFunc(names, internalTable), nil
}

// tablesInDependencyOrder lists doce's tables, each after the tables its foreign keys name.
func (s *Store) tablesInDependencyOrder(ctx context.Context) ([]string, error) {
	tables, err := s.tables(ctx)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for _, t := range tables {
		q := s.DB.NewRaw("SELECT DISTINCT \"table\" FROM pragma_foreign_key_list(?)", t)
		if s.IsPostgres() {
			q = s.DB.NewRaw("SELECT DISTINCT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND conrelid = ?::regclass", t)
		}
		var parents []string
		if err := q.Scan(ctx, &parents); err != nil {
			return nil, fmt.Errorf("store: unable to read the foreign keys of %s: %w", t, err)
		}
		deps[t] = parents
	}
	var ordered []string
	done := map[string]bool{}
	var visit func(t string, path []string) error
	visit = func(t string, path []string) error {
		if done[t] {
			return nil
		}
		if slices.Contains(path, t) {
			return fmt.Errorf("store: foreign keys form a cycle through %s", t)
		}
		for _, p := range deps[t] {
			if p != t {
				if err := visit(p, append(path, t)); err != nil {
					return err
				}
			}
		}
		done[t] = true
		ordered = append(ordered, t)
		return nil
	}
	for _, t := range tables {
		if err := visit(t, nil); err != nil {
			return nil, err
		}
	}
	return ordered, nil
}

// columnTypes maps table's columns to their types as the engine names them (lower case).
func (s *Store) columnTypes(ctx context.Context, db bun.IDB, table string) (map[string]string, error) {
	type col struct {
		Name string `bun:"name"`
		Type string `bun:"type"`
	}
	q := db.NewRaw("SELECT name, lower(type) AS type FROM pragma_table_info(?)", table)
	if s.IsPostgres() {
		q = db.NewRaw("SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?", table)
	}
	var cols []col
	if err := q.Scan(ctx, &cols); err != nil {
		return nil, fmt.Errorf("store: unable to read the columns of %s: %w", table, err)
	}
	types := make(map[string]string, len(cols))
	for _, c := range cols {
		types[c.Name] = c.Type
	}
	return types, nil
}

// resetIdentities moves every identity column's sequence past the highest id copied.
func resetIdentities(ctx context.Context, tx bun.Tx) error {
	type ident struct {
		Table  string `bun:"table_name"`
		Column string `bun:"column_name"`
	}
	var ids []ident
	err := tx.NewRaw("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES'").Scan(ctx, &ids)
	if err != nil {
		return fmt.Errorf("store: unable to list identity columns: %w", err)
	}
	for _, id := range ids {
		_, err := tx.NewRaw("SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX(?) FROM ?), 0) + 1, false)",
			id.Table, id.Column, bun.Ident(id.Column), bun.Ident(id.Table)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to move the sequence of %s.%s: %w", id.Table, id.Column, err)
		}
	}
	return nil
}
