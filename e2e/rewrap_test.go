package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// TestRotateAndRewrap stores 1,000 encrypted connections and a forge token, rotates the Transit
// key with `doce keys rotate -wait`, and checks every ciphertext was rewrapped to the new version
// inside Vault, still decrypts to the same key, and the old version no longer decrypts.
func TestRotateAndRewrap(t *testing.T) {
	stack := requireStack(t)
	keyName := fmt.Sprintf("rewrap-%d", time.Now().UnixNano())
	doce := startDoce(t, stack, "e2e-"+keyName, "DOCE_VAULT_TRANSIT_KEY="+keyName)
	ctx := context.Background()
	transit, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", keyName, 2)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	const users = 200
	providerIDs := []string{"openrouter", "anthropic", "openai", "google", "custom"}
	plain := map[string]string{} // connection id → key
	var oldCiphertext, oldContext string
	for i := range users {
		u := &store.User{Username: fmt.Sprintf("user%03d", i), PasswordHash: "x", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for _, pid := range providerIDs {
			key := fmt.Sprintf("sk-rewrap-%s-%03d-secret", pid, i)
			keyCtx := secrets.ConnectionContext(u.ID, pid, secrets.FieldAPIKey)
			ct, v, err := transit.Encrypt(ctx, []byte(key), keyCtx)
			if err != nil {
				t.Fatal(err)
			}
			c := &store.ProviderConnection{UserID: u.ID, ProviderID: pid, AuthType: store.AuthAPI, APIKeyCiphertext: ct, KeyVersion: v}
			if err := st.CreateConnection(ctx, c); err != nil {
				t.Fatal(err)
			}
			plain[c.ID] = key
			oldCiphertext, oldContext = ct, keyCtx
		}
	}

	forgeOwner, err := st.UserByUsername(ctx, "user000")
	if err != nil {
		t.Fatal(err)
	}
	forge := &store.ForgeConnection{ID: store.NewID(), UserID: forgeOwner.ID, Kind: "gitea", BaseURL: "https://git.example.com", AccountLogin: "user000"}
	forge.TokenCiphertext, forge.KeyVersion, err = transit.Encrypt(ctx, []byte("forge-rewrap-secret"), secrets.ForgeContext(forge.UserID, forge.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateForgeConnection(ctx, forge); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	out := doceCommand(t, doce, "keys", "rotate", "-wait")
	elapsed := time.Since(start)
	if !strings.Contains(out, "rewrapped 1001 ciphertexts") || !strings.Contains(out, "versions below 2 retired") {
		t.Fatalf("doce keys rotate -wait:\n%s", out)
	}
	t.Logf("rotated and rewrapped 1,000 connections in %s", elapsed.Round(10*time.Millisecond))
	recordHistory(t, stack, "credential-rewrap", "credential_rewrap.json")

	info, err := transit.Info(ctx)
	if err != nil || info.LatestVersion != 2 || info.MinDecryptionVersion != 2 {
		t.Fatalf("key info %+v %v, want latest 2 and min decryption 2", info, err)
	}
	n := 0
	for after := ""; ; {
		page, err := st.ConnectionsPage(ctx, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			after = c.ID
			n++
			if c.KeyVersion != 2 || !strings.HasPrefix(c.APIKeyCiphertext, "vault:v2:") {
				t.Fatalf("connection %s at version %d: %.10s…", c.ID, c.KeyVersion, c.APIKeyCiphertext)
			}
			if n%50 == 0 { // decrypting every one would only time Vault
				pt, err := transit.Decrypt(ctx, c.APIKeyCiphertext, secrets.ConnectionContext(c.UserID, c.ProviderID, secrets.FieldAPIKey))
				if err != nil || string(pt) != plain[c.ID] {
					t.Fatalf("connection %s decrypts to a different key (err %v)", c.ID, err)
				}
			}
		}
		if len(page) < 500 {
			break
		}
	}
	if n != users*len(providerIDs) {
		t.Fatalf("%d connections, want %d", n, users*len(providerIDs))
	}
	if f, err := st.ForgeConnection(ctx, forge.UserID, forge.ID); err != nil || f.KeyVersion != 2 || !strings.HasPrefix(f.TokenCiphertext, "vault:v2:") {
		t.Errorf("forge connection after the rewrap: version %d, %.10s… (%v)", f.KeyVersion, f.TokenCiphertext, err)
	} else if pt, err := transit.Decrypt(ctx, f.TokenCiphertext, secrets.ForgeContext(f.UserID, f.ID)); err != nil || string(pt) != "forge-rewrap-secret" {
		t.Errorf("the rewrapped forge token decrypts to another token (err %v)", err)
	}
	if _, err := transit.Decrypt(ctx, oldCiphertext, oldContext); !errors.Is(err, secrets.ErrUndecryptable) {
		t.Errorf("a version-1 ciphertext still decrypts: %v", err)
	}
	if out := doceCommand(t, doce, "keys", "status"); !strings.Contains(out, "connections at version 2: 1000") {
		t.Errorf("doce keys status:\n%s", out)
	}
	// A backup taken while doce runs holds the rewrapped rows, and no plaintext either.
	backup := filepath.Join(t.TempDir(), "doce-backup.db")
	doceCommand(t, doce, "backup", backup)
	bst, err := store.Open(backup)
	if err != nil {
		t.Fatal(err)
	}
	counts, err := bst.ConnectionsByKeyVersion(ctx)
	bst.Close()
	if err != nil || len(counts) != 1 || counts[0].Version != 2 || counts[0].Count != 1000 {
		t.Errorf("backup holds %+v (%v), want 1000 connections at version 2", counts, err)
	}
	if b, _ := os.ReadFile(backup); bytes.Contains(b, []byte("sk-rewrap-")) || bytes.Contains(b, []byte("forge-rewrap-secret")) {
		t.Error("a plaintext key is in the backup")
	}

	db, _ := os.ReadFile(filepath.Join(doce.DataDir, "doce.db"))
	wal, _ := os.ReadFile(filepath.Join(doce.DataDir, "doce.db-wal"))
	if bytes.Contains(db, []byte("sk-rewrap-")) || bytes.Contains(wal, []byte("sk-rewrap-")) ||
		bytes.Contains(db, []byte("forge-rewrap-secret")) || bytes.Contains(wal, []byte("forge-rewrap-secret")) {
		t.Error("a plaintext key is in the database files")
	}
}
