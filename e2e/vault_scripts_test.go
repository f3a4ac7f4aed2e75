package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// TestVaultScriptsInitAndAppRole runs the documented Vault procedure for production on a new
// Vault server with file storage: scripts/vault-init.sh initialises and unseals it (and only
// unseals after a restart), scripts/vault-approle.sh sets up the transit key, the policies and
// doce's AppRole, and doce then runs on the AppRole alone.
func TestVaultScriptsInitAndAppRole(t *testing.T) {
	stack := requireStack(t)
	bin := requireBin(t, "DOCE_TEST_VAULT_BIN")
	dir := t.TempDir()
	listen := freeAddr(t)
	addr := "http://" + listen
	hcl := fmt.Sprintf("storage \"file\" { path = %q }\nlistener \"tcp\" {\n  address = %q\n  tls_disable = true\n}\ndisable_mlock = true\n", filepath.Join(dir, "data"), listen)
	if err := os.WriteFile(filepath.Join(dir, "vault.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	vaultServer := startServer(t, "vault", bin, "server", "-config="+filepath.Join(dir, "vault.hcl"))
	script := func(env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	keyFile := filepath.Join(dir, "init.json")
	script(nil, "../scripts/vault-init.sh", addr, keyFile)
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed := func() bool {
		st, err := vaultClient(t, addr).Sys().SealStatus()
		return err != nil || st.Sealed
	}
	if sealed() {
		t.Fatal("vault is sealed after vault-init.sh")
	}
	keys, _ := os.ReadFile(keyFile)

	// After a restart Vault is sealed; the same script unseals it and initialises nothing.
	vaultServer.stop()
	vaultServer.start(t)
	waitFor(t, "vault listening again", 30*time.Second, func() (bool, error) {
		_, err := vaultClient(t, addr).Sys().SealStatus()
		return err == nil, err
	})
	if !sealed() {
		t.Fatal("vault is not sealed after a restart")
	}
	script(nil, "../scripts/vault-init.sh", addr, keyFile)
	if again, _ := os.ReadFile(keyFile); sealed() || !bytes.Equal(again, keys) {
		t.Fatal("the second run did not just unseal")
	}

	root := regexp.MustCompile(`"root_token":\s*"([^"]+)"`).FindSubmatch(keys)
	if root == nil {
		t.Fatal("no root token in the key file")
	}
	approle := filepath.Join(dir, "approle")
	script([]string{"VAULT_TOKEN=" + string(root[1])}, "../scripts/vault-approle.sh", addr, approle)
	for _, f := range []string{"role-id", "secret-id"} {
		if fi, err := os.Stat(filepath.Join(approle, f)); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}

	// doce signs in with the AppRole alone and encrypts under the service policy.
	doce := startDoce(t, stack, fmt.Sprintf("e2e-vault-scripts-%d", time.Now().UnixNano()),
		"VAULT_ADDR="+addr, "VAULT_TOKEN=",
		"VAULT_ROLE_ID_FILE="+filepath.Join(approle, "role-id"), "VAULT_SECRET_ID_FILE="+filepath.Join(approle, "secret-id"))
	resp, err := http.Get(doce.URL + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()
	admin(t, doce, "sk-e2e-approle") // connects a provider: the key is encrypted under the AppRole's token
}
