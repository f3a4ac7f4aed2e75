// Package legacy imports users and their OpenRouter keys from a doce.dev database (its Drizzle
// schema: users, user_settings.openrouter_api_key, projects) into doce.
package legacy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// Report says what an import did, row by row.
type Report struct {
	UsersImported  int
	UsersSkipped   []Skipped
	KeysMigrated   int
	KeysSkipped    []Skipped
	LegacyProjects int // left in doce.dev: their workspaces are not doce's
}

// Skipped is a row not imported and why.
type Skipped struct {
	Who    string
	Reason string
}

// Importer writes into doce's store, encrypting keys with Transit.
type Importer struct {
	Store   *store.Store
	Secrets *secrets.Transit
}

type legacyUser struct {
	ID, Username, PasswordHash string
	CreatedAt                  int64
	Key, DefaultModel          sql.NullString
}

// doce.dev hashed passwords as "<salt hex>:<scrypt key hex>".
var legacyScrypt = regexp.MustCompile(`^[0-9a-f]{32}:[0-9a-f]{128}$`)

// Import reads the doce.dev database at path (read-only) and brings its users and OpenRouter
// keys into doce. It is idempotent: users already imported, and keys already connected, are
// left as they are. A plaintext key only ever reaches Vault's encrypt call.
func (im *Importer) Import(ctx context.Context, path string) (*Report, error) {
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("legacy: unable to open %s: %w", path, err)
	}
	defer db.Close()
	users, err := readUsers(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("legacy: %s: %w", path, err)
	}
	rep := &Report{}
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM projects WHERE deleted_at IS NULL`).Scan(&rep.LegacyProjects); err != nil {
		rep.LegacyProjects = 0 // an older doce.dev without projects
	}
	for _, lu := range users {
		if err := im.importUser(ctx, lu, rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// readUsers reads doce.dev's users with their OpenRouter key and default model.
func readUsers(ctx context.Context, db *sql.DB) ([]legacyUser, error) {
	rows, err := db.QueryContext(ctx, `SELECT u.id, u.username, u.password_hash, u.created_at, s.openrouter_api_key, s.default_model
		FROM users u LEFT JOIN user_settings s ON s.user_id = u.id ORDER BY u.created_at`)
	if err != nil {
		return nil, fmt.Errorf("not a doce.dev database (users, user_settings): %w", err)
	}
	defer rows.Close()
	var users []legacyUser
	for rows.Next() {
		var u legacyUser
		if err := rows.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.CreatedAt, &u.Key, &u.DefaultModel); err != nil {
			return nil, fmt.Errorf("unable to read users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("unable to read users: %w", err)
	}
	return users, nil
}

func (im *Importer) importUser(ctx context.Context, lu legacyUser, rep *Report) error {
	u, err := im.Store.UserByID(ctx, lu.ID)
	switch {
	case err == nil:
		rep.UsersSkipped = append(rep.UsersSkipped, Skipped{lu.Username, "already imported"})
	case errors.Is(err, store.ErrNotFound):
		if other, err := im.Store.UserByUsername(ctx, lu.Username); err == nil && other.ID != lu.ID {
			rep.UsersSkipped = append(rep.UsersSkipped, Skipped{lu.Username, "a different doce user already has this username"})
			rep.KeysSkipped = append(rep.KeysSkipped, Skipped{lu.Username, "user not imported"})
			return nil
		}
		hash := store.ResetRequired
		if legacyScrypt.MatchString(lu.PasswordHash) {
			hash = store.LegacyScryptPrefix + lu.PasswordHash
		}
		role := store.RoleUser
		if n, err := im.Store.CountUsers(ctx); err != nil {
			return err
		} else if n == 0 {
			role = store.RoleAdmin // doce.dev had one user, its administrator
		}
		u = &store.User{ID: lu.ID, Username: lu.Username, PasswordHash: hash, Role: role, CreatedAt: time.Unix(lu.CreatedAt, 0).UTC()}
		if err := im.Store.ImportUser(ctx, u); err != nil {
			return err
		}
		rep.UsersImported++
		if hash == store.ResetRequired {
			rep.UsersSkipped = append(rep.UsersSkipped, Skipped{lu.Username, "imported, but its password hash is of an unknown kind: an administrator must set a new password"})
		}
	default:
		return err
	}
	return im.importKey(ctx, u, lu, rep)
}

func (im *Importer) importKey(ctx context.Context, u *store.User, lu legacyUser, rep *Report) error {
	key := strings.TrimSpace(lu.Key.String)
	if key == "" {
		rep.KeysSkipped = append(rep.KeysSkipped, Skipped{lu.Username, "no OpenRouter key"})
		return nil
	}
	openrouter, _ := providers.Lookup("openrouter")
	if _, err := im.Store.Connection(ctx, u.ID, openrouter.ID); err == nil {
		rep.KeysSkipped = append(rep.KeysSkipped, Skipped{lu.Username, "OpenRouter already connected"})
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := openrouter.ValidateKey(key); err != nil {
		var fe *providers.FieldError
		if errors.As(err, &fe) {
			rep.KeysSkipped = append(rep.KeysSkipped, Skipped{lu.Username, fe.Message})
			return nil
		}
		return err
	}
	ct, version, err := im.Secrets.Encrypt(ctx, []byte(key), secrets.ConnectionContext(u.ID, openrouter.ID, secrets.FieldAPIKey))
	if err != nil {
		return err
	}
	c := &store.ProviderConnection{
		UserID: u.ID, ProviderID: openrouter.ID, AuthType: store.AuthAPI,
		APIKeyCiphertext: ct, KeyVersion: version, DisplayHint: "…" + key[len(key)-4:],
	}
	if err := im.Store.ImportConnection(ctx, c, lu.DefaultModel.String); err != nil {
		return err
	}
	rep.KeysMigrated++
	return nil
}
