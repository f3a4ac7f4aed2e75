package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestAPITokens(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := &store.User{Username: "alice", PasswordHash: "h", Role: store.RoleUser}
		bob := &store.User{Username: "bob", PasswordHash: "h", Role: store.RoleUser}
		for _, u := range []*store.User{alice, bob} {
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		secret, tok, err := st.CreateAPIToken(ctx, alice.ID, "ci", store.ScopeRead, time.Now().Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, store.APITokenPrefix) || len(secret) < len(store.APITokenPrefix)+40 || !strings.HasPrefix(secret, tok.DisplayPrefix) {
			t.Fatalf("token %q, prefix %q", secret, tok.DisplayPrefix)
		}
		if _, _, err := st.CreateAPIToken(ctx, alice.ID, "x", "root", time.Now().Add(time.Hour)); err == nil {
			t.Error("an unknown scope was accepted")
		}
		// The database takes the admin scope (its CHECK constraint was widened).
		carol := &store.User{Username: "carol", PasswordHash: "h", Role: store.RoleAdmin}
		if err := st.CreateUser(ctx, carol); err != nil {
			t.Fatal(err)
		}
		if _, at, err := st.CreateAPIToken(ctx, carol.ID, "accounts", store.ScopeAdmin, time.Now().Add(time.Hour)); err != nil || at.Scope != store.ScopeAdmin {
			t.Fatalf("an admin-scope token: %+v %v", at, err)
		}

		u, got, err := st.UserByAPIToken(ctx, secret)
		if err != nil || u.ID != alice.ID || got.ID != tok.ID || got.Scope != store.ScopeRead {
			t.Fatalf("lookup: %+v %+v %v", u, got, err)
		}
		for _, bad := range []string{"", "doce_pat_", secret + "x", strings.TrimPrefix(secret, store.APITokenPrefix)} {
			if _, _, err := st.UserByAPIToken(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("lookup %q: %v, want ErrNotFound", bad, err)
			}
		}

		// The database holds the hash, never the token.
		raw := storetest.Contents(t, st)
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), strings.TrimPrefix(secret, tok.DisplayPrefix)) {
			t.Error("the token is in the database in plaintext")
		}

		// Uses: last_used_at at most once a minute, an audit event at most once an hour.
		now := time.Now().UTC()
		uses := []time.Duration{0, 10 * time.Second, 2 * time.Minute, 30 * time.Minute, 61 * time.Minute}
		for _, d := range uses {
			_, got, err := st.UserByAPIToken(ctx, secret)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.RecordAPITokenUse(ctx, got, now.Add(d)); err != nil {
				t.Fatal(err)
			}
		}
		_, got, _ = st.UserByAPIToken(ctx, secret)
		if got.LastUsedAt == nil || got.LastUsedAt.Sub(now.Add(61*time.Minute)).Abs() > time.Millisecond {
			t.Errorf("last used %v, want %v", got.LastUsedAt, now.Add(61*time.Minute))
		}
		evs, err := st.AuditEventsByActor(ctx, alice.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, ev := range evs {
			count[ev.Action]++
			if strings.Contains(ev.Detail, secret) {
				t.Errorf("audit event %s holds the token", ev.Action)
			}
		}
		if count["api_token.create"] != 1 || count["api_token.use"] != 2 {
			t.Errorf("audit events %v, want one create and two uses (at 0 and 61 min)", count)
		}

		// Lists are per user; another user cannot revoke.
		if ts, err := st.APITokens(ctx, alice.ID); err != nil || len(ts) != 1 || ts[0].ID != tok.ID {
			t.Fatalf("alice's tokens: %+v %v", ts, err)
		}
		if ts, err := st.APITokens(ctx, bob.ID); err != nil || len(ts) != 0 {
			t.Fatalf("bob's tokens: %+v %v", ts, err)
		}
		if err := st.RevokeAPIToken(ctx, bob.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("bob revoking alice's token: %v, want ErrNotFound", err)
		}
		if err := st.RevokeAPIToken(ctx, alice.ID, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.UserByAPIToken(ctx, secret); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token: %v, want ErrNotFound", err)
		}
		if err := st.RevokeAPIToken(ctx, alice.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second revoke: %v, want ErrNotFound", err)
		}
		if ts, _ := st.APITokens(ctx, alice.ID); len(ts) != 0 {
			t.Errorf("a revoked token is listed: %+v", ts)
		}

		// Expired tokens and disabled users' tokens do not work.
		expired, _, err := st.CreateAPIToken(ctx, alice.ID, "old", store.ScopeWrite, time.Now().Add(-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.UserByAPIToken(ctx, expired); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired token: %v, want ErrNotFound", err)
		}
		bobs, _, err := st.CreateAPIToken(ctx, bob.ID, "bob", store.ScopeWrite, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DisableUser(ctx, bob.ID, alice.ID); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.UserByAPIToken(ctx, bobs); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a disabled user's token: %v, want ErrNotFound", err)
		}
	})
}
