package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/secrets"
)

// newTransit returns a Transit on the test Vault with a key of its own.
func newTransit(t *testing.T) *secrets.Transit {
	t.Helper()
	addr, token := os.Getenv("DOCE_TEST_VAULT_ADDR"), os.Getenv("DOCE_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but DOCE_TEST_VAULT_ADDR/TOKEN are missing")
		}
		t.Skip("needs a Vault server: run `make test`")
	}
	tr, err := secrets.NewTransit(addr, token, "transit", fmt.Sprintf("test-%d", time.Now().UnixNano()), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(context.Background()); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	return tr
}

func TestEncryptDecryptBoundToContext(t *testing.T) {
	tr := newTransit(t)
	ctx := context.Background()
	alice := secrets.ConnectionContext("alice", "openai", secrets.FieldAPIKey)
	ct, version, err := tr.Encrypt(ctx, []byte("sk-secret"), alice)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ct, "vault:v1:") || version != 1 || strings.Contains(ct, "sk-secret") {
		t.Fatalf("ciphertext %q version %d", ct, version)
	}
	pt, err := tr.Decrypt(ctx, ct, alice)
	if err != nil || string(pt) != "sk-secret" {
		t.Fatalf("decrypt: %q %v", pt, err)
	}
	// The same ciphertext in bob's row, or in another field of alice's, does not decrypt.
	for _, other := range []string{
		secrets.ConnectionContext("bob", "openai", secrets.FieldAPIKey),
		secrets.ConnectionContext("alice", "anthropic", secrets.FieldAPIKey),
		secrets.ConnectionContext("alice", "openai", "oauth_access"),
	} {
		pt, err := tr.Decrypt(ctx, ct, other)
		if !errors.Is(err, secrets.ErrUndecryptable) {
			t.Errorf("decrypt under %s: %q %v, want ErrUndecryptable", other, pt, err)
		}
		if err != nil && strings.Contains(err.Error(), "sk-secret") {
			t.Errorf("error leaks the plaintext: %v", err)
		}
	}
}
