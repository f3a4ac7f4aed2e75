package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestMigrateDB runs doce migrate-db from a SQLite installation to a new PostgreSQL database:
// the target gets the schema and every row (a key still its ciphertext), the counts are
// printed per table, and a second run into the now non-empty target is refused.
func TestMigrateDB(t *testing.T) {
	ctx := context.Background()
	target := storetest.NewDatabase(t, storetest.Postgres)
	path := filepath.Join(t.TempDir(), "doce.db")
	src, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrations.Up(ctx, src.DB); err != nil {
		t.Fatal(err)
	}
	u := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleAdmin}
	if err := src.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := src.CreateConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:c2VjcmV0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateSession(ctx, u.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	src.Close()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out bytes.Buffer
	if err := runMigrateDB(ctx, log, []string{"--from", "sqlite:" + path, "--to", target}, &out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"users                           1        1", "provider_connections            1        1", "sessions                        1        1", "audit_events                    1        1",
		// Tables this installation has no rows in are listed too.
		"api_tokens                      0        0", "login_throttles                 0        0", "pool_workspaces                 0        0",
		"signing_keys                    0        0", "preview_token_uses              0        0"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}
	tu, _ := url.Parse(target)
	if pw, _ := tu.User.Password(); pw == "" || strings.Contains(out.String(), pw) {
		t.Errorf("the output shows the target's password (or the test server has none):\n%s", out.String())
	}
	dst, err := store.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if c, err := dst.Connection(ctx, u.ID, "openai"); err != nil || c.APIKeyCiphertext != "vault:v1:c2VjcmV0" {
		t.Fatalf("connection on the target: %+v %v", c, err)
	}

	err = runMigrateDB(ctx, log, []string{"--from", "sqlite:" + path, "--to", target}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second run: %v, want a refusal of the non-empty target", err)
	}
	for _, bad := range [][]string{{"--from", path, "--to", target}, {"--from", "sqlite:" + path, "--to", "sqlite:/tmp/x.db"}, {"--from", "sqlite:" + path}} {
		if err := runMigrateDB(ctx, log, bad, io.Discard); err == nil || !strings.Contains(err.Error(), "migrate-db --from sqlite:PATH") {
			t.Errorf("%v: %v, want the usage", bad, err)
		}
	}
}
