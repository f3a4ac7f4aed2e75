package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestCopySQLiteToPostgres copies an installation with a row in every table and checks they
// arrive as they were and work there: ciphertexts unchanged, sessions and API tokens still
// signing in, throttles still locking, a prebuilt workspace still claimable, a used preview
// token still used, audit ids kept and continued, and counts equal per table. A second copy into the now non-empty target is refused.
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
	p, _, err := src.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "n", Slug: "n", Prompt: "p", ProviderID: "openai", ModelID: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.SetProjectPasswordOnce(ctx, p.ID, "vault:v1:password"); err != nil {
		t.Fatal(err)
	}

	// A row in every other table: api tokens (used, so its times are set), sign-in throttles,
	// a Docker host, a prebuilt workspace on it, a signing key and a used preview token.
	secret, tok, err := src.CreateAPIToken(ctx, u.ID, "ci", store.ScopeWrite, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := src.RecordAPITokenUse(ctx, tok, time.Now()); err != nil {
		t.Fatal(err)
	}
	policy := map[string]store.Backoff{store.ThrottleAccount: {Free: 1, Base: time.Hour, Max: time.Hour, Forget: time.Hour}}
	throttled := store.ThrottleKey{Kind: store.ThrottleAccount, Subject: "mallory"}
	if _, err := src.RecordLoginFailure(ctx, time.Now(), policy, throttled); err != nil {
		t.Fatal(err)
	}
	if err := src.RegisterHost(ctx, &store.Host{Name: "local", TaskQueue: "doce-host-local", HeartbeatSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.PlaceProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	pooled := store.NewID()
	if err := src.AddPoolWorkspace(ctx, pooled, "img:1", "base", "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := src.SetPoolPasswordOnce(ctx, pooled, "vault:v1:pool-password"); err != nil {
		t.Fatal(err)
	}
	if err := src.MarkPoolFree(ctx, pooled, "cid", "doce-"+pooled+"-opencode", 40001); err != nil {
		t.Fatal(err)
	}
	if err := src.AddSigningKey(ctx, "preview", "vault:v1:signing-key"); err != nil {
		t.Fatal(err)
	}
	if err := src.UsePreviewToken(ctx, "token-1", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}

	// The LLM gateway's rows: a project's token, a request's usage, a budget; and a browser that
	// signed in before.
	if _, err := src.IssueGatewayToken(ctx, p.ID, conn.ID); err != nil {
		t.Fatal(err)
	}
	if err := src.RecordUsage(ctx, &store.UsageRecord{UserID: u.ID, ProjectID: p.ID, ProviderID: "openai", ModelID: "m",
		CreatedAt: time.Now().UTC(), InputTokens: 3, OutputTokens: 2, Status: 200}); err != nil {
		t.Fatal(err)
	}
	monthly := int64(20e9)
	if err := src.SetBudget(ctx, store.BudgetUser, u.ID, &monthly); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CreateLoginDevice(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	running := 3
	if err := src.SetUserQuota(ctx, store.UserQuota{UserID: u.ID, Running: &running}); err != nil {
		t.Fatal(err)
	}
	// A git forge connected.
	forge := &store.ForgeConnection{ID: store.NewID(), UserID: u.ID, Kind: "gitea", BaseURL: "https://git.example.com",
		AccountLogin: "ada", TokenCiphertext: "vault:v1:forge-token", KeyVersion: 1}
	if err := src.CreateForgeConnection(ctx, forge); err != nil {
		t.Fatal(err)
	}

	counts, err := src.CopyTo(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	// Every table of the schema is copied, and each holds a row here: a table a later migration
	// adds fails this test until it has a row above.
	if len(counts) < 11 {
		t.Errorf("%d tables copied: %+v", len(counts), counts)
	}
	for _, c := range counts {
		if c.Source == 0 {
			t.Errorf("%s has no row in this test's source: add one", c.Table)
		}
		if c.Source != c.Target {
			t.Errorf("%s: %d copied to %d", c.Table, c.Source, c.Target)
		}
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
	if err != nil || gp.ServerPasswordCiphertext != "vault:v1:password" || !gp.CreatedAt.Equal(p.CreatedAt.Truncate(time.Microsecond)) || gp.Host != "local" {
		t.Fatalf("project on the target: %+v %v", gp, err)
	}
	// The copied audit events kept their ids; the next one continues after them.
	evs, _ := dst.AuditEvents(ctx, 100)
	if err := dst.Audit(ctx, nil, store.AuditEvent{ActorID: u.ID, Action: "test", TargetType: "t", TargetID: "x"}); err != nil {
		t.Fatalf("an audit event after the copy: %v", err)
	}
	if after, _ := dst.AuditEvents(ctx, 100); len(after) != len(evs)+1 || after[0].ID != evs[0].ID+1 {
		t.Errorf("audit ids after the copy: %+v", after)
	}
	if got, _, err := dst.UserByAPIToken(ctx, secret); err != nil || got.ID != u.ID {
		t.Errorf("API token on the target: %v %v", got, err)
	}
	if wait, err := dst.LoginLockedFor(ctx, time.Now(), throttled); err != nil || wait < 59*time.Minute {
		t.Errorf("throttle on the target: locked for %s (%v), want about an hour", wait, err)
	}
	claimed, _, err := dst.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "m", Slug: "m", Prompt: "p", ProviderID: "openai", ModelID: "m"}, &store.PoolClaim{Image: "img:1", Configs: []string{"base"}})
	if err != nil || claimed.ID != pooled || claimed.HostPort != 40001 || claimed.ServerPasswordCiphertext != "vault:v1:pool-password" || claimed.Host != "local" {
		t.Errorf("a project on the target claiming the copied workspace: %+v %v", claimed, err)
	}
	if f, err := dst.ForgeConnection(ctx, u.ID, forge.ID); err != nil || f.TokenCiphertext != "vault:v1:forge-token" || f.AccountLogin != "ada" {
		t.Errorf("forge connection on the target: %+v %v", f, err)
	}
	if k, err := dst.SigningKey(ctx, "preview"); err != nil || k.Ciphertext != "vault:v1:signing-key" {
		t.Errorf("signing key on the target: %+v %v", k, err)
	}
	if err := dst.UsePreviewToken(ctx, "token-1", time.Now().Add(time.Minute)); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("a preview token used before the copy: %v, want ErrTokenUsed", err)
	}

	if _, err := src.CopyTo(ctx, dst); !errors.Is(err, store.ErrTargetNotEmpty) {
		t.Fatalf("a copy into a non-empty target: %v, want ErrTargetNotEmpty", err)
	}
}
