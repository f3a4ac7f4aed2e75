package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestSigningKeyFirstStoredWins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if _, err := st.SigningKey(ctx, "preview"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("before any: %v", err)
		}
		for _, ct := range []string{"vault:v1:first", "vault:v1:second"} {
			if err := st.AddSigningKey(ctx, "preview", ct); err != nil {
				t.Fatal(err)
			}
		}
		k, err := st.SigningKey(ctx, "preview")
		if err != nil || k.Ciphertext != "vault:v1:first" {
			t.Fatalf("got %+v %v, want the first key stored", k, err)
		}
		// A rewrap replaces only the ciphertext it read.
		st.ReplaceSigningKeyCiphertext(ctx, "preview", "vault:v1:stale", "vault:v2:x")
		st.ReplaceSigningKeyCiphertext(ctx, "preview", "vault:v1:first", "vault:v2:first")
		if k, _ := st.SigningKey(ctx, "preview"); k.Ciphertext != "vault:v2:first" {
			t.Fatalf("after rewrap: %q", k.Ciphertext)
		}
	})
}

func TestPreviewTokenWorksOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		exp := time.Now().Add(time.Minute)
		if err := st.UsePreviewToken(ctx, "t1", exp); err != nil {
			t.Fatal(err)
		}
		if err := st.UsePreviewToken(ctx, "t1", exp); !errors.Is(err, store.ErrTokenUsed) {
			t.Fatalf("second use: %v, want ErrTokenUsed", err)
		}
		if err := st.UsePreviewToken(ctx, "t2", exp); err != nil {
			t.Fatalf("another token: %v", err)
		}
	})
}
