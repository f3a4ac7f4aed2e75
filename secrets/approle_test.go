package secrets_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/doce-dev/doce/secrets"
)

// TestAppRoleLeastPrivilege signs in with AppRole under deploy/vault/doce-policy.hcl: doce can
// encrypt and decrypt, cannot rotate, keeps its short-lived token alive, and also signs in
// with a response-wrapped secret id.
func TestAppRoleLeastPrivilege(t *testing.T) {
	addr, token := os.Getenv("DOCE_TEST_VAULT_ADDR"), os.Getenv("DOCE_TEST_VAULT_TOKEN")
	if addr == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but DOCE_TEST_VAULT_ADDR is missing")
		}
		t.Skip("needs a Vault server: run `make test`")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	root, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	root.SetToken(token)

	// As the operator: the key, the policy from the repository, an AppRole with 4 s tokens.
	admin, _ := secrets.NewTransit(addr, token, "transit", "doce-credentials", 2)
	if err := admin.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	n := time.Now().UnixNano()
	mount, policy, role := fmt.Sprintf("approle-%d", n), fmt.Sprintf("doce-%d", n), "doce"
	if err := root.Sys().EnableAuthWithOptions(mount, &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	hcl, err := os.ReadFile("../deploy/vault/doce-policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy(policy, string(hcl)); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/"+mount+"/role/"+role, map[string]any{
		"token_policies": policy, "token_ttl": "4s", "token_max_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/" + mount + "/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/"+mount+"/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ar := secrets.AppRole{RoleIDFile: write("role-id", rid.Data["role_id"].(string)), SecretIDFile: write("secret-id", sid.Data["secret_id"].(string)), MountPath: mount}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	tr, err := secrets.NewTransitAppRole(ctx, addr, "transit", "doce-credentials", 2, ar, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(ctx); err != nil {
		t.Fatalf("Ensure under the least-privilege policy: %v", err)
	}
	keyCtx := secrets.ConnectionContext("u", "openai", secrets.FieldAPIKey)
	// Past three token lifetimes, calls still work: the token was renewed (or doce signed in again).
	for i := 0; i < 3; i++ {
		ct, _, err := tr.Encrypt(ctx, []byte("sk-approle"), keyCtx)
		if err != nil {
			t.Fatalf("encrypt after %ds: %v", i*5, err)
		}
		if pt, err := tr.Decrypt(ctx, ct, keyCtx); err != nil || string(pt) != "sk-approle" {
			t.Fatalf("decrypt: %v", err)
		}
		time.Sleep(5 * time.Second)
	}
	if _, err := tr.Rotate(ctx); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("rotate under the service policy: %v, want permission denied", err)
	}

	// A response-wrapped secret id, as an orchestrator would hand it over.
	wrapper, _ := root.Clone()
	wrapper.SetToken(token)
	wrapper.SetWrappingLookupFunc(func(string, string) string { return "60s" })
	wrapped, err := wrapper.Logical().Write("auth/"+mount+"/role/"+role+"/secret-id", nil)
	if err != nil || wrapped.WrapInfo == nil {
		t.Fatalf("wrapped secret id: %v", err)
	}
	ar.SecretIDFile, ar.Wrapped = write("wrapped-secret-id", wrapped.WrapInfo.Token), true
	tr2, err := secrets.NewTransitAppRole(ctx, addr, "transit", "doce-credentials", 2, ar, log)
	if err != nil {
		t.Fatalf("sign in with a wrapped secret id: %v", err)
	}
	if _, _, err := tr2.Encrypt(ctx, []byte("x"), keyCtx); err != nil {
		t.Fatal(err)
	}
}
