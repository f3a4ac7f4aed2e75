package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestForgeConnections: one connection per user and forge, each user sees and deletes only
// their own, both acts are audited, and a rewrap's write loses to a change made after its read.
func TestForgeConnections(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ada := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}
		bob := &store.User{Username: "bob", PasswordHash: "h", Role: store.RoleUser}
		for _, u := range []*store.User{ada, bob} {
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		f := &store.ForgeConnection{ID: store.NewID(), UserID: ada.ID, Kind: "gitea", BaseURL: "https://git.example.com",
			AccountLogin: "ada", TokenCiphertext: "vault:v1:tok", KeyVersion: 1, DisplayHint: "…abcd"}
		if err := st.CreateForgeConnection(ctx, f); err != nil {
			t.Fatal(err)
		}
		dup := *f
		dup.ID = store.NewID()
		if err := st.CreateForgeConnection(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second connection to the same forge: %v, want ErrConflict", err)
		}
		// Bob may connect the same forge; he does not see or delete Ada's.
		theirs := *f
		theirs.ID, theirs.UserID = store.NewID(), bob.ID
		if err := st.CreateForgeConnection(ctx, &theirs); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ForgeConnection(ctx, bob.ID, f.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Bob reads Ada's connection: %v", err)
		}
		if err := st.DeleteForgeConnection(ctx, bob.ID, f.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Bob deletes Ada's connection: %v", err)
		}
		list, err := st.ForgeConnectionsByUser(ctx, ada.ID)
		if err != nil || len(list) != 1 || list[0].ID != f.ID || list[0].TokenCiphertext != "vault:v1:tok" {
			t.Fatalf("Ada's connections: %+v %v", list, err)
		}

		// A rewrap read before a change must not overwrite it.
		page, err := st.ForgeConnectionsPage(ctx, "", 10)
		if err != nil || len(page) != 2 {
			t.Fatalf("page: %+v %v", page, err)
		}
		var mine store.ForgeConnection
		for _, p := range page {
			if p.ID == f.ID {
				mine = p
			}
		}
		mine.TokenCiphertext, mine.KeyVersion = "vault:v2:tok", 2
		if err := st.UpdateForgeCiphertext(ctx, &mine); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ForgeConnection(ctx, ada.ID, f.ID); got.TokenCiphertext != "vault:v2:tok" || got.KeyVersion != 2 {
			t.Errorf("rewrapped: %+v", got)
		}
		stale := mine
		stale.UpdatedAt = stale.UpdatedAt.Add(-1)
		stale.TokenCiphertext = "vault:v3:stale"
		if err := st.UpdateForgeCiphertext(ctx, &stale); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ForgeConnection(ctx, ada.ID, f.ID); got.TokenCiphertext != "vault:v2:tok" {
			t.Errorf("a stale rewrap overwrote the row: %+v", got)
		}

		if err := st.DeleteForgeConnection(ctx, ada.ID, f.ID); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteForgeConnection(ctx, ada.ID, f.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second delete: %v", err)
		}
		evs, _ := st.AuditEventsByActor(ctx, ada.ID, 10)
		if len(evs) != 2 || evs[0].Action != "forge.disconnect" || evs[1].Action != "forge.connect" ||
			evs[1].Detail != "gitea https://git.example.com as ada" || evs[0].TargetID != f.ID {
			t.Errorf("audit events: %+v", evs)
		}
	})
}

// TestForgeTokenRefused: a refusal marks the connection, a refusal of a token already replaced
// does not, and replacing the token clears the mark; each is audited.
func TestForgeTokenRefused(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		ada := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, ada); err != nil {
			t.Fatal(err)
		}
		if err := st.CreateForgeConnection(ctx, &store.ForgeConnection{ID: store.NewID(), UserID: ada.ID, Kind: "gitea",
			BaseURL: "https://git.example.com", AccountLogin: "ada", TokenCiphertext: "vault:v1:old"}); err != nil {
			t.Fatal(err)
		}
		list, err := st.ForgeConnectionsByUser(ctx, ada.ID)
		if err != nil || len(list) != 1 || list[0].TokenRefusedAt != nil {
			t.Fatalf("connections: %+v %v", list, err)
		}
		read := list[0] // as a push reads it before the forge refuses its token
		if err := st.MarkForgeTokenRefused(ctx, &read); err != nil || read.TokenRefusedAt == nil {
			t.Fatalf("mark: %v %+v", err, read)
		}
		if got, _ := st.ForgeConnection(ctx, ada.ID, read.ID); got.TokenRefusedAt == nil || !got.TokenRefusedAt.Equal(*read.TokenRefusedAt) {
			t.Errorf("marked: %+v", got)
		}

		next := read
		next.TokenCiphertext, next.AccountLogin, next.DisplayHint = "vault:v1:new", "ada2", "…wxyz"
		if err := st.ReplaceForgeToken(ctx, &next); err != nil {
			t.Fatal(err)
		}
		got, _ := st.ForgeConnection(ctx, ada.ID, read.ID)
		if got.TokenRefusedAt != nil || got.TokenCiphertext != "vault:v1:new" || got.AccountLogin != "ada2" || got.DisplayHint != "…wxyz" || !got.UpdatedAt.Equal(next.UpdatedAt) {
			t.Errorf("replaced: %+v", got)
		}
		// The old token's refusal, arriving late, leaves the new one alone.
		if err := st.MarkForgeTokenRefused(ctx, &read); err != nil {
			t.Fatal(err)
		}
		if got, _ := st.ForgeConnection(ctx, ada.ID, read.ID); got.TokenRefusedAt != nil {
			t.Errorf("a refusal of the replaced token marked the new one: %+v", got)
		}
		// Another user's connection cannot be replaced.
		theirs := next
		theirs.UserID = store.NewID()
		if err := st.ReplaceForgeToken(ctx, &theirs); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("replace another user's: %v", err)
		}
		evs, _ := st.AuditEventsByActor(ctx, ada.ID, 10)
		if len(evs) != 3 || evs[0].Action != "forge.replace" || evs[1].Action != "forge.token-refused" || evs[2].Action != "forge.connect" {
			t.Errorf("audit events: %+v", evs)
		}
	})
}
