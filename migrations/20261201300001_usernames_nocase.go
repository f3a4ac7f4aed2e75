package migrations

import (
	"context"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
)

// Usernames are unique without regard to case, so Alice and alice are one account. An install
// that already holds two names differing only in case is refused with their names: which one to
// rename is the operator's decision, not a migration's.
func init() {
	Migrations.MustRegister(func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			var dups []struct {
				Names string `bun:"names"`
			}
			err := tx.NewRaw(`SELECT group_concat(username, ', ') AS names FROM users GROUP BY lower(username) HAVING count(*) > 1`).Scan(ctx, &dups)
			if err != nil {
				return fmt.Errorf("unable to look for usernames differing only in case: %w", err)
			}
			if len(dups) > 0 {
				var groups []string
				for _, d := range dups {
					groups = append(groups, "["+d.Names+"]")
				}
				return fmt.Errorf("usernames must be unique regardless of case, and these differ only in case: %s; "+
					"rename all but one of each (UPDATE users SET username = 'new-name' WHERE username = 'old-name') and run doce migrate again",
					strings.Join(groups, " "))
			}
			_, err = tx.ExecContext(ctx, `CREATE UNIQUE INDEX users_username_nocase ON users (lower(username))`)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS users_username_nocase`)
		return err
	})
}
