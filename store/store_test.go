package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestFirstAdminOnlyOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.CreateFirstAdmin(ctx, &store.User{Username: "a", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateFirstAdmin(ctx, &store.User{Username: "b", PasswordHash: "h"}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second admin: %v, want ErrConflict", err)
		}
		u, err := st.UserByUsername(ctx, "a")
		if err != nil || u.Role != store.RoleAdmin {
			t.Fatalf("admin: %+v %v", u, err)
		}
	})
}

func TestSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		token, err := st.CreateSession(ctx, u.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := st.UserBySessionToken(ctx, token); err != nil || got.ID != u.ID {
			t.Fatalf("session user: %v %v", got, err)
		}
		expired, _ := st.CreateSession(ctx, u.ID, -time.Minute)
		if _, err := st.UserBySessionToken(ctx, expired); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired session: %v, want ErrNotFound", err)
		}
		if err := st.DeleteSession(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UserBySessionToken(ctx, token); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("deleted session: %v, want ErrNotFound", err)
		}
	})
}

func TestConnectionsUniquePerProviderAndPreferred(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		c1 := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:x"}
		if err := st.CreateConnection(ctx, c1); err != nil {
			t.Fatal(err)
		}
		dup := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:y"}
		if err := st.CreateConnection(ctx, dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("duplicate: %v, want ErrConflict", err)
		}
		if err := st.CreateConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: "custom", AuthType: store.AuthAPI}); err != nil {
			t.Fatal(err)
		}
		s, err := st.Settings(ctx, u.ID)
		if err != nil || s.PreferredProviderID != "openai" {
			t.Fatalf("preferred provider %q, %v; want the first connected (openai)", s.PreferredProviderID, err)
		}
		evs, _ := st.AuditEventsByActor(ctx, u.ID, 10)
		if len(evs) != 2 || evs[0].Action != "connection.create" {
			t.Fatalf("audit events: %+v", evs)
		}
	})
}

func TestProjectsOwnedAndPasswordSetOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		a := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		b := &store.User{Username: "b", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, a)
		st.CreateUser(ctx, b)
		p1 := &store.Project{OwnerUserID: a.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
		p2 := &store.Project{OwnerUserID: a.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
		if _, _, err := st.CreateProject(ctx, p1, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CreateProject(ctx, p2, nil); err != nil {
			t.Fatal(err)
		}
		if p1.Slug == p2.Slug {
			t.Errorf("two projects share slug %q", p1.Slug)
		}
		if _, err := st.ProjectForOwner(ctx, b.ID, p1.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("b reads a's project: %v, want ErrNotFound", err)
		}
		first, err := st.SetProjectPasswordOnce(ctx, p1.ID, "vault:v1:first")
		if err != nil || first != "vault:v1:first" {
			t.Fatalf("first password: %q %v", first, err)
		}
		again, err := st.SetProjectPasswordOnce(ctx, p1.ID, "vault:v1:second")
		if err != nil || again != "vault:v1:first" {
			t.Fatalf("second password: %q %v, want the first kept", again, err)
		}
	})
}

func TestCreateProjectIdempotentByRequestID(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		const n = 8
		ids := make(chan string, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m", RequestID: "req-1"}, nil)
				if err != nil {
					errs <- err
					return
				}
				ids <- p.ID
			}()
		}
		seen := map[string]bool{}
		for range n {
			select {
			case err := <-errs:
				t.Fatal(err)
			case id := <-ids:
				seen[id] = true
			}
		}
		ps, _ := st.ProjectsByOwner(ctx, u.ID)
		if len(seen) != 1 || len(ps) != 1 {
			t.Fatalf("%d distinct ids, %d projects; want 1 and 1", len(seen), len(ps))
		}
	})
}

func TestBackup(t *testing.T) {
	st := storetest.Open(t, storetest.SQLite)
	ctx := context.Background()
	if err := st.CreateUser(ctx, &store.User{Username: "kept", PasswordHash: "h", Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := st.Backup(ctx, path); err != nil {
		t.Fatal(err)
	}
	if err := st.Backup(ctx, path); err == nil {
		t.Error("a backup overwrote an existing file")
	}
	restored, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	if _, err := restored.UserByUsername(ctx, "kept"); err != nil {
		t.Fatalf("the backup lacks the user: %v", err)
	}
}

func TestOAuthConnectionLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		exp := time.Now().UTC().Add(time.Hour) // nanoseconds: the guard below compares it as stored
		c := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", OAuthAccessCiphertext: "vault:v1:a1",
			OAuthRefreshCiphertext: "vault:v1:r1", OAuthExpiresAt: &exp, OAuthAccountID: "acct"}
		if err := st.SaveOAuthConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
		// A key rotation rewraps the ciphertexts meanwhile; the refresh still stores its pair.
		read, _ := st.Connection(ctx, u.ID, "openai")
		read.OAuthAccessCiphertext, read.KeyVersion = "vault:v2:a1", 2
		if err := st.UpdateConnectionCiphertexts(ctx, read); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.Connection(ctx, u.ID, "openai"); got.OAuthAccessCiphertext != "vault:v2:a1" {
			t.Fatalf("the rewrap was not stored: %q", got.OAuthAccessCiphertext)
		}
		next := exp.Add(time.Hour)
		c.OAuthAccessCiphertext, c.OAuthRefreshCiphertext, c.OAuthExpiresAt = "vault:v1:a2", "vault:v1:r2", &next
		if ok, err := st.UpdateOAuthTokens(ctx, c, *read.OAuthExpiresAt); err != nil || !ok {
			t.Fatalf("refresh: %v %v", ok, err)
		}
		// A refresh of a pair that is no longer stored (a new login came first) stores nothing.
		c.OAuthAccessCiphertext = "vault:v1:a3"
		if ok, err := st.UpdateOAuthTokens(ctx, c, exp); err != nil || ok {
			t.Fatalf("a refresh of a replaced pair stored: %v %v", ok, err)
		}
		// And a rewrap that read the row before the refresh does not put the old pair back.
		read.OAuthAccessCiphertext = "vault:v2:a1-late"
		if err := st.UpdateConnectionCiphertexts(ctx, read); err != nil {
			t.Fatal(err)
		}
		got, _ := st.Connection(ctx, u.ID, "openai")
		if got.OAuthAccessCiphertext != "vault:v1:a2" || got.OAuthRefreshCiphertext != "vault:v1:r2" || got.AuthType != store.AuthOAuth || !got.OAuthExpiresAt.Equal(next.Truncate(time.Microsecond)) {
			t.Fatalf("stored %+v", got)
		}
		// A refused refresh expires it; logging in again brings the same row back.
		if err := st.ExpireConnection(ctx, got, "log in again"); err != nil {
			t.Fatal(err)
		}
		if got, _ = st.Connection(ctx, u.ID, "openai"); got.Status != store.ConnExpired || got.ErrorMessage != "log in again" {
			t.Fatalf("after expiry %+v", got)
		}
		again := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", OAuthAccessCiphertext: "vault:v1:a4"}
		if err := st.SaveOAuthConnection(ctx, again); err != nil {
			t.Fatal(err)
		}
		if got, _ = st.Connection(ctx, u.ID, "openai"); got.ID != c.ID || got.Status != store.ConnConnected || got.ErrorMessage != "" || got.OAuthRefreshCiphertext != "" {
			t.Fatalf("after logging in again %+v", got)
		}
		// Replacing the sign-in with a key leaves no token behind.
		key := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:k"}
		if err := st.ReplaceConnectionSecret(ctx, key); err != nil {
			t.Fatal(err)
		}
		if got, _ = st.Connection(ctx, u.ID, "openai"); got.AuthType != store.AuthAPI || got.OAuthAccessCiphertext != "" || got.OAuthExpiresAt != nil || got.OAuthAccountID != "" {
			t.Fatalf("after replacing with a key %+v", got)
		}
		evs, _ := st.AuditEventsByActor(ctx, u.ID, 10)
		if len(evs) != 3 || evs[2].Action != "connection.create" || evs[1].Action != "connection.replace" {
			t.Fatalf("audit events: %+v", evs)
		}
	})
}

// TestSchemaInvariants checks what the schema itself guarantees, on each engine: CHECK
// constraints refuse unknown states, deleting a user removes everything they own, and a time
// reads back as the instant that was stored, whatever its zone.
func TestSchemaInvariants(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "owner", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateUser(ctx, &store.User{Username: "x", PasswordHash: "h", Role: "root"}); err == nil {
			t.Error("a user with role root was stored")
		}
		if err := st.CreateConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: "p", AuthType: "password"}); err == nil {
			t.Error("a connection with auth_type password was stored")
		}
		if err := st.CreateConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", AuthType: store.AuthAPI, APIKeyCiphertext: "vault:v1:k"}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateForgeConnection(ctx, &store.ForgeConnection{ID: store.NewID(), UserID: u.ID, Kind: "svn", BaseURL: "https://x", AccountLogin: "a", TokenCiphertext: "vault:v1:t"}); err == nil {
			t.Error("a forge connection of kind svn was stored")
		}
		if err := st.CreateForgeConnection(ctx, &store.ForgeConnection{ID: store.NewID(), UserID: u.ID, Kind: "gitea", BaseURL: "https://x", AccountLogin: "a", TokenCiphertext: "vault:v1:t"}); err != nil {
			t.Fatal(err)
		}
		p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "n", Slug: "n", Prompt: "p", ProviderID: "openai", ModelID: "m"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.TransitionProject(ctx, p.ID, status.Live, "exploded", ""); err == nil {
			t.Error("a project with status exploded was stored")
		}
		if _, err := st.CreateSession(ctx, u.ID, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.CreateAPIToken(ctx, u.ID, "ci", store.ScopeRead, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}

		// A time in another zone is the same instant once read back (to the microsecond both
		// engines keep).
		berlin := time.FixedZone("CET", 3600)
		sent := time.Date(2026, 12, 1, 21, 30, 15, 123456000, berlin)
		if err := st.MarkPromptSent(ctx, p.ID, sent); err != nil {
			t.Fatal(err)
		}
		got, err := st.Project(ctx, p.ID)
		if err != nil || got.PromptSentAt == nil || !got.PromptSentAt.Equal(sent) {
			t.Fatalf("prompt_sent_at %v (%v), want %v", got.PromptSentAt, err, sent)
		}

		if _, err := st.DB.NewDelete().Model((*store.User)(nil)).Where("id = ?", u.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, table := range []string{"sessions", "provider_connections", "user_settings", "api_tokens", "forge_connections"} {
			n, err := st.DB.NewSelect().Table(table).Where("user_id = ?", u.ID).Count(ctx)
			if err != nil || n != 0 {
				t.Errorf("%s: %d rows of the deleted user (%v)", table, n, err)
			}
		}
		if n, err := st.DB.NewSelect().Table("projects").Where("owner_user_id = ?", u.ID).Count(ctx); err != nil || n != 0 {
			t.Errorf("projects: %d rows of the deleted user (%v)", n, err)
		}
	})
}

func TestBackupRefusedOnPostgres(t *testing.T) {
	st := storetest.Open(t, storetest.Postgres)
	if err := st.Backup(context.Background(), filepath.Join(t.TempDir(), "b.db")); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup on PostgreSQL: %v, want a pointer to pg_dump", err)
	}
}

func TestTransitionProjectOnlyFromTheGivenStates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		p := &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
		if _, _, err := st.CreateProject(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		p.Status = status.Ready
		if _, err := st.TransitionProject(ctx, p.ID, status.Live, p.Status, ""); err != nil {
			t.Fatal(err)
		}
		// Two stops race: one moves the project, the other finds it moved.
		moved, err := st.TransitionProject(ctx, p.ID, []status.Project{status.Ready}, status.Stopping, "")
		if err != nil || !moved {
			t.Fatalf("ready → stopping: moved=%v err=%v", moved, err)
		}
		if moved, err := st.TransitionProject(ctx, p.ID, []status.Project{status.Ready}, status.Stopping, ""); err != nil || moved {
			t.Fatalf("second ready → stopping: moved=%v err=%v, want not moved", moved, err)
		}
		if moved, err := st.TransitionProject(ctx, p.ID, []status.Project{status.Stopping}, status.Stopped, "it broke"); err != nil || !moved {
			t.Fatalf("stopping → stopped: moved=%v err=%v", moved, err)
		}
		got, _ := st.Project(ctx, p.ID)
		if got.Status != status.Stopped || got.SetupError != "it broke" {
			t.Fatalf("project %s %q, want stopped with the error", got.Status, got.SetupError)
		}
		// A deleted project moves no more.
		if err := st.MarkProjectDeleted(ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		if moved, err := st.TransitionProject(ctx, p.ID, []status.Project{status.Deleted}, status.Starting, ""); err != nil || moved {
			t.Fatalf("deleted → starting: moved=%v err=%v, want not moved", moved, err)
		}
	})
}

// TestFirstAdminRace: first-run forms submitted at once make one admin, on each engine
// (PostgreSQL does not serialize transactions as SQLite's single writer does).
func TestFirstAdminRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		const n = 8
		storetest.Warm(t, st, n)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				errs <- st.CreateFirstAdmin(ctx, &store.User{Username: fmt.Sprintf("admin%d", i), PasswordHash: "h"})
			}()
		}
		made := 0
		for range n {
			if err := <-errs; err == nil {
				made++
			} else if !errors.Is(err, store.ErrConflict) {
				t.Fatal(err)
			}
		}
		if c, _ := st.CountUsers(ctx); made != 1 || c != 1 {
			t.Fatalf("%d admins made, %d users; want 1 and 1", made, c)
		}
	})
}

// TestUsernamesUniqueWhateverTheCase: Alice and alice are one account on each engine, found
// by either spelling.
func TestUsernamesUniqueWhateverTheCase(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if err := st.CreateUser(ctx, &store.User{Username: "Alice", PasswordHash: "h", Role: store.RoleUser}); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateUser(ctx, &store.User{Username: "aLICE", PasswordHash: "h", Role: store.RoleUser}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("aLICE next to Alice: %v, want ErrConflict", err)
		}
		if u, err := st.UserByUsername(ctx, "ALICE"); err != nil || u.Username != "Alice" {
			t.Fatalf("ALICE: %+v %v", u, err)
		}
	})
}

// TestOAuthLoginsAtOnce: logins to one provider finishing at once each store their tokens on
// the one connection, on each engine.
func TestOAuthLoginsAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		const n = 8
		storetest.Warm(t, st, n)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				errs <- st.SaveOAuthConnection(ctx, &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", OAuthAccessCiphertext: fmt.Sprintf("vault:v1:a%d", i)})
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if cs, _ := st.ConnectionsByUser(ctx, u.ID); len(cs) != 1 {
			t.Fatalf("%d connections, want 1", len(cs))
		}
	})
}
