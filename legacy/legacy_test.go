package legacy_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/doce-dev/doce/legacy"
	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// The doce.dev schema, as its Drizzle migrations create it (the tables the import reads).
const legacySchema = `
CREATE TABLE users (id text PRIMARY KEY NOT NULL, created_at integer NOT NULL, username text NOT NULL, password_hash text NOT NULL);
CREATE TABLE user_settings (user_id text PRIMARY KEY NOT NULL, openrouter_api_key text, default_model text, fast_model text,
  updated_at integer NOT NULL, FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE cascade);
CREATE TABLE projects (id text PRIMARY KEY NOT NULL, owner_user_id text NOT NULL, created_at integer NOT NULL, deleted_at integer,
  name text NOT NULL, slug text NOT NULL, prompt text NOT NULL, dev_port integer NOT NULL, status text DEFAULT 'created' NOT NULL,
  path_on_disk text NOT NULL, production_port integer NOT NULL);
`

// A hash doce.dev's hashPassword (Node's crypto.scrypt) made for "legacy password".
const nodeScrypt = "00112233445566778899aabbccddeeff:b22c506984b43049ab4ccc95dc0590651687da2899f098acf1858e359104ca2da48d45a07fd03a99564196b7e99023c3f16a0acb2e167a5466600f6189b8c938"

const legacyKey = "sk-or-v1-legacy-import-test-key-0001"

func buildLegacyDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "doce.dev.db")
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().Unix()
	for _, q := range []string{
		legacySchema,
		fmt.Sprintf(`INSERT INTO users VALUES ('legacy-admin', %d, 'pablo', '%s')`, now-1000, nodeScrypt),
		fmt.Sprintf(`INSERT INTO user_settings VALUES ('legacy-admin', '%s', 'anthropic/claude-sonnet-4.5', NULL, %d)`, legacyKey, now),
		fmt.Sprintf(`INSERT INTO users VALUES ('legacy-two', %d, 'second', '$argon2id$v=19$unknown')`, now-500),
		fmt.Sprintf(`INSERT INTO user_settings VALUES ('legacy-two', 'not-an-openrouter-key', NULL, NULL, %d)`, now),
		fmt.Sprintf(`INSERT INTO users VALUES ('legacy-three', %d, 'third', '%s')`, now-100, nodeScrypt),
		fmt.Sprintf(`INSERT INTO projects VALUES ('p1', 'legacy-admin', %d, NULL, 'Old', 'old', 'x', 3000, 'running', '/data/old', 4000)`, now),
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}

func TestImportLegacy(t *testing.T) {
	addr, token := os.Getenv("DOCE_TEST_VAULT_ADDR"), os.Getenv("DOCE_TEST_VAULT_TOKEN")
	if addr == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but DOCE_TEST_VAULT_ADDR is missing")
		}
		t.Skip("needs a Vault server: run `make test`")
	}
	ctx := context.Background()
	transit, err := secrets.NewTransit(addr, token, "transit", fmt.Sprintf("legacy-%d", time.Now().UnixNano()), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := transit.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(t.TempDir(), "doce.db")
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := migrations.Up(ctx, st.DB); err != nil {
		t.Fatal(err)
	}
	im := &legacy.Importer{Store: st, Secrets: transit}
	path := buildLegacyDB(t)

	rep, err := im.Import(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.UsersImported != 3 || rep.KeysMigrated != 1 || rep.LegacyProjects != 1 {
		t.Fatalf("report %+v", rep)
	}
	admin, err := st.UserByUsername(ctx, "pablo")
	if err != nil || admin.Role != store.RoleAdmin {
		t.Fatalf("pablo: %+v %v", admin, err)
	}
	if ok, rehash, err := store.CheckPassword(admin.PasswordHash, "legacy password"); !ok || !rehash || err != nil {
		t.Errorf("pablo's legacy password does not verify: %v %v %v", ok, rehash, err)
	}
	second, _ := st.UserByUsername(ctx, "second")
	if second.PasswordHash != store.ResetRequired {
		t.Errorf("an unknown hash kind was kept: %q", second.PasswordHash)
	}
	conn, err := st.Connection(ctx, admin.ID, "openrouter")
	if err != nil {
		t.Fatal(err)
	}
	pt, err := transit.Decrypt(ctx, conn.APIKeyCiphertext, secrets.ConnectionContext(admin.ID, "openrouter", secrets.FieldAPIKey))
	if err != nil || string(pt) != legacyKey {
		t.Fatalf("the imported key does not decrypt to the legacy key: %v", err)
	}
	settings, _ := st.Settings(ctx, admin.ID)
	if settings.PreferredProviderID != "openrouter" || settings.MigrationCompletedAt == nil || !settings.ProviderAuthInitialized || settings.DefaultModel != "anthropic/claude-sonnet-4.5" {
		t.Errorf("settings %+v", settings)
	}
	reasons := map[string]string{}
	for _, s := range rep.KeysSkipped {
		reasons[s.Who] = s.Reason
	}
	if reasons["second"] == "" || reasons["third"] != "no OpenRouter key" {
		t.Errorf("skipped keys %+v", rep.KeysSkipped)
	}

	// A second run changes nothing.
	again, err := im.Import(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if again.UsersImported != 0 || again.KeysMigrated != 0 || len(again.UsersSkipped) != 3 {
		t.Fatalf("second run %+v", again)
	}
	if n, _ := st.CountUsers(ctx); n != 3 {
		t.Errorf("%d users after two imports, want 3", n)
	}
	for _, f := range []string{dbPath, dbPath + "-wal"} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(legacyKey)) {
			t.Errorf("the plaintext key is in %s", filepath.Base(f))
		}
	}
}
