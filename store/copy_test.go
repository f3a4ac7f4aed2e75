package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestCopySQLiteToPostgres copies an installation's rows and checks they arrive as they were:
// ciphertexts unchanged, sessions still signing in, audit ids kept and continued, and counts
// equal per table. A second copy into the now non-empty target is refused.
func TestCopySQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	src := storetest.Open(t, storetest.SQLite)
	dst := storetest.Open(t, storetest.Postgres)

	u := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleAdmin}
	if err := src.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	token, err := src.CreateSession(ctx, u.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().UTC().Add(time.Hour).Truncate(time.Microsecond)
	conn := &store.ProviderConnection{UserID: u.ID, ProviderID: "openai", OAuthAccessCiphertext: "vault:v1:access",
		OAuthRefreshCiphertext: "vault:v1:refresh", OAuthExpiresAt: &exp}
	if err := src.SaveOAuthConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	p, _, err := src.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "n", Slug: "n", Prompt: "p", ProviderID: "openai", ModelID: "m"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.SetProjectPasswordOnce(ctx, p.ID, "vault:v1:password"); err != nil {
		t.Fatal(err)
	}

	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"users": 1, "sessions": 1, "user_settings": 1, "provider_connections": 1, "projects": 1, "audit_events": 1}
	for _, c := range counts {
		if c.Source != c.Target || c.Source != want[c.Table] {
			t.Errorf("%s: %d copied to %d, want %d", c.Table, c.Source, c.Target, want[c.Table])
		}
		delete(want, c.Table)
	}
	if len(want) != 0 {
		t.Errorf("tables not copied: %v", want)
	}

	if got, err := dst.UserBySessionToken(ctx, token); err != nil || got.ID != u.ID {
		t.Fatalf("session on the target: %v %v", got, err)
	}
	gc, err := dst.Connection(ctx, u.ID, "openai")
	if err != nil || gc.OAuthAccessCiphertext != "vault:v1:access" || gc.OAuthRefreshCiphertext != "vault:v1:refresh" ||
		gc.OAuthExpiresAt == nil || !gc.OAuthExpiresAt.Equal(exp) || gc.ID != conn.ID {
		t.Fatalf("connection on the target: %+v %v", gc, err)
	}
	if s, _ := dst.Settings(ctx, u.ID); !s.ProviderAuthInitialized || s.PreferredProviderID != "openai" {
		t.Errorf("settings on the target: %+v", s)
	}
	gp, err := dst.Project(ctx, p.ID)
	if err != nil || gp.ServerPasswordCiphertext != "vault:v1:password" || !gp.CreatedAt.Equal(p.CreatedAt.Truncate(time.Microsecond)) {
		t.Fatalf("project on the target: %+v %v", gp, err)
	}
	// The copied audit event kept id 1; the next one continues after it.
	if err := dst.Audit(ctx, nil, store.AuditEvent{ActorID: u.ID, Action: "test", TargetType: "t", TargetID: "x"}); err != nil {
		t.Fatalf("an audit event after the copy: %v", err)
	}
	if evs, _ := dst.AuditEvents(ctx, 10); len(evs) != 2 || evs[0].ID != 2 || evs[1].ID != 1 {
		t.Errorf("audit ids after the copy: %+v", evs)
	}

	if _, err := src.CopyTo(ctx, dst); !errors.Is(err, store.ErrTargetNotEmpty) {
		t.Fatalf("a copy into a non-empty target: %v, want ErrTargetNotEmpty", err)
	}
}
