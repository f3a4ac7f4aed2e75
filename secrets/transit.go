// Package secrets encrypts provider credentials with HashiCorp Vault's Transit engine.
//
// Every ciphertext is made with a derived Transit key and a context naming the row and field it
// belongs to (see Context), so a ciphertext copied into another row or column does not decrypt.
// Plaintext exists only in the caller's memory.
package secrets

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// Transit encrypts and decrypts with one derived key on one Transit mount.
type Transit struct {
	client *vault.Client
	mount  string
	key    string
	// Observe, when set, is told of every encrypt, decrypt and rewrap (for metrics).
	Observe func(op string, d time.Duration, err error)
}

func (t *Transit) observe(op string, start time.Time, err error) {
	if t.Observe != nil {
		t.Observe(op, time.Since(start), err)
	}
}

// NewTransit returns a Transit bound to mount and key, using the Vault address and token given.
// Calls that find Vault unreachable, sealed or overloaded are retried about every 1.5 s, up to
// retries times (bounded by the caller's context): the web tier keeps this small to answer
// quickly, the worker large enough to ride out a Vault restart inside one setup step.
func NewTransit(addr, token, mount, key string, retries int) (*Transit, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = retries
	cfg.MinRetryWait, cfg.MaxRetryWait = time.Second, 2*time.Second
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("secrets: unable to create vault client: %w", err)
	}
	c.SetToken(token)
	return &Transit{client: c, mount: strings.Trim(mount, "/"), key: key}, nil
}

// Context names the row and field a secret belongs to; Transit derives a distinct key from it.
func Context(parts ...string) string { return strings.Join(parts, "/") }

// ConnectionContext binds a provider connection's secret field to its user and provider.
func ConnectionContext(userID, providerID, field string) string {
	return Context("doce", "v1", "user", userID, "provider", providerID, "field", field)
}

// ForgeContext binds a forge connection's token to its user and row.
func ForgeContext(userID, connectionID string) string {
	return Context("doce", "v1", "user", userID, "forge", connectionID, "field", "token")
}

// ProjectContext binds a project's secret field to the project.
func ProjectContext(projectID, field string) string {
	return Context("doce", "v1", "project", projectID, "field", field)
}

// LoginContext binds a pending device login's code to the user and provider signing in.
func LoginContext(userID, providerID string) string {
	return Context("doce", "v1", "user", userID, "login", providerID, "field", "device_code")
}

// SigningKeyContext binds a signing key doce keeps (store.SigningKey) to its name.
func SigningKeyContext(name string) string {
	return Context("doce", "v1", "signing-key", name)
}

// Ensure enables the Transit mount and creates the derived key when either is missing. The web
// tier and the workers may run it at the same moment; whoever loses a race finds the winner's.
func (t *Transit) Ensure(ctx context.Context) error {
	// Look at the key first: a least-privilege token (deploy/vault/doce-policy.hcl) may read it
	// but not list mounts; an administrator has created both then.
	if key, err := t.readKey(ctx); err == nil && key != nil {
		return checkDerived(t.key, key)
	}
	mounts, err := t.client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("secrets: unable to list vault mounts (create the transit mount and key %s with an admin token, see README): %w", t.key, err)
	}
	if _, ok := mounts[t.mount+"/"]; !ok {
		err := t.client.Sys().MountWithContext(ctx, t.mount, &vault.MountInput{Type: "transit", Description: "doce provider credentials"})
		if err != nil && !strings.Contains(err.Error(), "path is already in use") {
			return fmt.Errorf("secrets: unable to enable transit at %s: %w", t.mount, err)
		}
	}
	key, err := t.readKey(ctx)
	if err != nil {
		return err
	}
	if key == nil {
		_, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/keys/"+t.key, map[string]any{
			"type":    "aes256-gcm96",
			"derived": true,
		})
		if key, _ = t.readKey(ctx); key == nil {
			return fmt.Errorf("secrets: unable to create transit key %s: %w", t.key, err)
		}
	}
	return checkDerived(t.key, key)
}

func checkDerived(name string, key *vault.Secret) error {
	if derived, _ := key.Data["derived"].(bool); !derived {
		return fmt.Errorf("secrets: transit key %s exists but is not derived; doce needs a derived key to bind ciphertexts to their rows", name)
	}
	return nil
}

func (t *Transit) readKey(ctx context.Context) (*vault.Secret, error) {
	key, err := t.client.Logical().ReadWithContext(ctx, t.mount+"/keys/"+t.key)
	if err != nil {
		return nil, fmt.Errorf("secrets: unable to read transit key %s: %w", t.key, err)
	}
	return key, nil
}

// Ping checks Vault answers and is unsealed.
func (t *Transit) Ping(ctx context.Context) error {
	h, err := t.client.Sys().HealthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("secrets: vault unreachable: %w", err)
	}
	if h.Sealed {
		return errors.New("secrets: vault is sealed")
	}
	return nil
}

// Encrypt encrypts plaintext bound to keyContext and returns the ciphertext and key version.
func (t *Transit) Encrypt(ctx context.Context, plaintext []byte, keyContext string) (ct string, version int, err error) {
	start := time.Now()
	defer func() { t.observe("encrypt", start, err) }()
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/encrypt/"+t.key, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext),
		"context":   base64.StdEncoding.EncodeToString([]byte(keyContext)),
	})
	if err != nil {
		return "", 0, fmt.Errorf("secrets: unable to encrypt: %w", err)
	}
	ct, _ = sec.Data["ciphertext"].(string)
	if ct == "" {
		return "", 0, errors.New("secrets: vault returned no ciphertext")
	}
	return ct, keyVersion(ct), nil
}

// Decrypt decrypts ciphertext bound to keyContext. Vault's error never includes the plaintext.
func (t *Transit) Decrypt(ctx context.Context, ciphertext, keyContext string) (pt []byte, err error) {
	start := time.Now()
	defer func() { t.observe("decrypt", start, err) }()
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/decrypt/"+t.key, map[string]any{
		"ciphertext": ciphertext,
		"context":    base64.StdEncoding.EncodeToString([]byte(keyContext)),
	})
	if err != nil {
		var rerr *vault.ResponseError
		if errors.As(err, &rerr) && rerr.StatusCode == http.StatusBadRequest {
			return nil, fmt.Errorf("%w: %s", ErrUndecryptable, strings.Join(rerr.Errors, "; "))
		}
		return nil, fmt.Errorf("secrets: unable to decrypt: %w", err)
	}
	b64, _ := sec.Data["plaintext"].(string)
	pt, err = base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("secrets: vault returned malformed plaintext: %w", err)
	}
	return pt, nil
}

// ErrUndecryptable means Vault refused the ciphertext: wrong row, wrong field, or tampered.
// Retrying does not help.
var ErrUndecryptable = errors.New("secrets: ciphertext does not decrypt for this row")

// keyVersion reads N from "vault:vN:...".
func keyVersion(ct string) int {
	parts := strings.SplitN(ct, ":", 3)
	if len(parts) < 3 || !strings.HasPrefix(parts[1], "v") {
		return 0
	}
	n, _ := strconv.Atoi(parts[1][1:])
	return n
}

// Fields of a provider connection that hold secrets, as named in their Transit context.
const (
	FieldAPIKey       = "api_key"
	FieldOAuthRefresh = "oauth_refresh"
	FieldOAuthAccess  = "oauth_access"
	FieldWellKnown    = "wellknown_token"
)

// KeyInfo is what Vault says of the Transit key's versions.
type KeyInfo struct {
	LatestVersion        int
	MinDecryptionVersion int
}

// Info reads the key's versions.
func (t *Transit) Info(ctx context.Context) (KeyInfo, error) {
	key, err := t.readKey(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	if key == nil {
		return KeyInfo{}, fmt.Errorf("secrets: transit key %s does not exist", t.key)
	}
	return KeyInfo{LatestVersion: intOf(key.Data["latest_version"]), MinDecryptionVersion: intOf(key.Data["min_decryption_version"])}, nil
}

// Rotate makes a new key version that new encryptions use; older ones still decrypt until
// SetMinDecryptionVersion retires them.
func (t *Transit) Rotate(ctx context.Context) (KeyInfo, error) {
	if _, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/keys/"+t.key+"/rotate", nil); err != nil {
		return KeyInfo{}, fmt.Errorf("secrets: unable to rotate transit key %s: %w", t.key, err)
	}
	return t.Info(ctx)
}

// SetMinDecryptionVersion retires key versions below v: ciphertexts made with them no longer
// decrypt. Rewrap every stored ciphertext first.
func (t *Transit) SetMinDecryptionVersion(ctx context.Context, v int) error {
	_, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/keys/"+t.key+"/config", map[string]any{"min_decryption_version": v})
	if err != nil {
		return fmt.Errorf("secrets: unable to set min_decryption_version of %s: %w", t.key, err)
	}
	return nil
}

// Sealed is a ciphertext with the context it is bound to.
type Sealed struct {
	Ciphertext string
	Context    string
}

// Rewrap re-encrypts ciphertexts under the latest key version inside Vault, so the plaintext
// never leaves it. The result is in the order given.
func (t *Transit) Rewrap(ctx context.Context, items []Sealed) (out []string, err error) {
	if len(items) == 0 {
		return nil, nil
	}
	start := time.Now()
	defer func() { t.observe("rewrap", start, err) }()
	batch := make([]map[string]any, len(items))
	for i, it := range items {
		batch[i] = map[string]any{"ciphertext": it.Ciphertext, "context": base64.StdEncoding.EncodeToString([]byte(it.Context))}
	}
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/rewrap/"+t.key, map[string]any{"batch_input": batch})
	if err != nil {
		return nil, fmt.Errorf("secrets: unable to rewrap: %w", err)
	}
	results, _ := sec.Data["batch_results"].([]any)
	if len(results) != len(items) {
		return nil, fmt.Errorf("secrets: rewrap returned %d results for %d ciphertexts", len(results), len(items))
	}
	out = make([]string, len(items))
	for i, r := range results {
		m, _ := r.(map[string]any)
		if e, _ := m["error"].(string); e != "" {
			return nil, fmt.Errorf("secrets: rewrap of item %d refused: %s", i, e)
		}
		out[i], _ = m["ciphertext"].(string)
	}
	return out, nil
}

// KeyVersion reads N from a "vault:vN:..." ciphertext; 0 when it is not one.
func KeyVersion(ct string) int { return keyVersion(ct) }

func intOf(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	}
	return 0
}

func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
