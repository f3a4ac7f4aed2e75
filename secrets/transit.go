// Package secrets encrypts provider credentials with HashiCorp Vault's Transit engine.
//
// Every ciphertext is made with a derived Transit key and a context naming the row and field it
// belongs to (see Context), so a ciphertext copied into another row or column does not decrypt.
// Plaintext exists only in the caller's memory.
package secrets

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
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

// ProjectContext binds a project's secret field to the project.
func ProjectContext(projectID, field string) string {
	return Context("doce", "v1", "project", projectID, "field", field)
}

// Ensure enables the Transit mount and creates the derived key when either is missing. The web
// tier and the workers may run it at the same moment; whoever loses a race finds the winner's.
func (t *Transit) Ensure(ctx context.Context) error {
	mounts, err := t.client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("secrets: unable to list vault mounts: %w", err)
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
	if derived, _ := key.Data["derived"].(bool); !derived {
		return fmt.Errorf("secrets: transit key %s exists but is not derived; doce needs a derived key to bind ciphertexts to their rows", t.key)
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
func (t *Transit) Encrypt(ctx context.Context, plaintext []byte, keyContext string) (string, int, error) {
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/encrypt/"+t.key, map[string]any{
		"plaintext": base64.StdEncoding.EncodeToString(plaintext),
		"context":   base64.StdEncoding.EncodeToString([]byte(keyContext)),
	})
	if err != nil {
		return "", 0, fmt.Errorf("secrets: unable to encrypt: %w", err)
	}
	ct, _ := sec.Data["ciphertext"].(string)
	if ct == "" {
		return "", 0, errors.New("secrets: vault returned no ciphertext")
	}
	return ct, keyVersion(ct), nil
}

// Decrypt decrypts ciphertext bound to keyContext. Vault's error never includes the plaintext.
func (t *Transit) Decrypt(ctx context.Context, ciphertext, keyContext string) ([]byte, error) {
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/decrypt/"+t.key, map[string]any{
		"ciphertext": ciphertext,
		"context":    base64.StdEncoding.EncodeToString([]byte(keyContext)),
	})
	if err != nil {
		var rerr *vault.ResponseError
		if errors.As(err, &rerr) && rerr.StatusCode == 400 {
			return nil, fmt.Errorf("%w: %s", ErrUndecryptable, strings.Join(rerr.Errors, "; "))
		}
		return nil, fmt.Errorf("secrets: unable to decrypt: %w", err)
	}
	b64, _ := sec.Data["plaintext"].(string)
	pt, err := base64.StdEncoding.DecodeString(b64)
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
	FieldAPIKey = "api_key"
)
