package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestChangePassword: the new hash is stored, every other session of the user ends and every
// token of theirs is revoked, in one audited step; another user's sessions and tokens stay.
func TestChangePassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := &store.User{Username: "alice", PasswordHash: "old", Role: store.RoleUser}
		bob := &store.User{Username: "bob", PasswordHash: "bob's", Role: store.RoleUser}
		for _, u := range []*store.User{alice, bob} {
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		here, _ := st.CreateSession(ctx, alice.ID, time.Hour)
		elsewhere, _ := st.CreateSession(ctx, alice.ID, time.Hour)
		bobs, _ := st.CreateSession(ctx, bob.ID, time.Hour)
		aliceToken, _, _ := st.CreateAPIToken(ctx, alice.ID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
		bobToken, _, _ := st.CreateAPIToken(ctx, bob.ID, "ci", store.ScopeWrite, time.Now().Add(time.Hour))
		keep, err := st.SessionByToken(ctx, here)
		if err != nil {
			t.Fatal(err)
		}

		sessions, tokens, err := st.ChangePassword(ctx, alice.ID, "new", keep.ID)
		if err != nil || sessions != 1 || tokens != 1 {
			t.Fatalf("ChangePassword: %d sessions, %d tokens, %v; want 1, 1", sessions, tokens, err)
		}
		if u, _ := st.UserByID(ctx, alice.ID); u.PasswordHash != "new" {
			t.Errorf("hash %q, want new", u.PasswordHash)
		}
		if _, err := st.UserBySessionToken(ctx, here); err != nil {
			t.Errorf("the session that changed the password ended: %v", err)
		}
		if _, err := st.UserBySessionToken(ctx, elsewhere); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another session of alice's lives on: %v", err)
		}
		if _, _, err := st.UserByAPIToken(ctx, aliceToken); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("alice's token lives on: %v", err)
		}
		if _, err := st.UserBySessionToken(ctx, bobs); err != nil {
			t.Errorf("bob's session ended: %v", err)
		}
		if _, _, err := st.UserByAPIToken(ctx, bobToken); err != nil {
			t.Errorf("bob's token was revoked: %v", err)
		}
		evs, _ := st.AuditEvents(ctx, 10)
		if len(evs) == 0 || evs[0].Action != "user.password_change" || evs[0].Detail != "sessions_ended=1 api_tokens_revoked=1" {
			t.Errorf("audit: %+v", evs)
		}
		if _, _, err := st.ChangePassword(ctx, "no-such-user", "x", ""); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an unknown user: %v, want ErrNotFound", err)
		}
	})
}
