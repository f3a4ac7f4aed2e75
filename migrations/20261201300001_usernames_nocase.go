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
			// Plain SQL both engines run: the names of each group, grouped here.
			var names []string
			err := tx.NewRaw(`SELECT username FROM users WHERE lower(username) IN
				(SELECT lower(username) FROM users GROUP BY lower(username) HAVING count(*) > 1)
				ORDER BY lower(username), username`).Scan(ctx, &names)
			if err != nil {
				return fmt.Errorf("unable to look for usernames differing only in case: %w", err)
			}
			if len(names) > 0 {
				var groups [][]string
				for i, n := range names {
					if i == 0 || !strings.EqualFold(n, names[i-1]) {
						groups = append(groups, nil)
					}
					groups[len(groups)-1] = append(groups[len(groups)-1], n)
				}
				var listed []string
				for _, g := range groups {
					listed = append(listed, "["+strings.Join(g, ", ")+"]")
				}
				return fmt.Errorf("usernames must be unique regardless of case, and these differ only in case: %s; "+
					"rename all but one of each (UPDATE users SET username = 'new-name' WHERE username = 'old-name') and run doce migrate again",
					strings.Join(listed, " "))
			}
			_, err = tx.ExecContext(ctx, `CREATE UNIQUE INDEX users_username_nocase ON users (lower(username))`)
			return err
		})
	}, func(ctx context.Context, db *bun.DB) error {
		_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS users_username_nocase`)
		return err
	})
}
