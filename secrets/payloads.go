package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Temporal payloads are encrypted with envelope encryption: each process asks Vault Transit's
// datakey endpoint for a 256-bit data key, encrypts payloads with it locally (AES-256-GCM), and
// stores the data key wrapped by Transit next to each payload. Vault is asked again only when the
// data key is replaced (every PayloadKeyTTL) or when a payload names a wrapped key this process
// has not opened lately, so a workflow task costs no Vault round trip.
//
// The payload key is a Transit key of its own: doce's credential key has old versions retired
// after a rewrap (CredentialRewrap), which would make recorded histories undecryptable.
const (
	// PayloadEncoding marks an encrypted payload, as in Temporal's samples; the Temporal UI and
	// CLI show it for payloads they cannot decode without the codec endpoint.
	PayloadEncoding = "binary/encrypted"
	// metaWrappedKey holds the data key as Transit ciphertext (vault:vN:...).
	metaWrappedKey = "encryption-key"
	metaCipher     = "encryption-cipher"
	cipherName     = "AES-256-GCM"

	// payloadKeyContext is the derivation context of the payload key's data keys.
	payloadKeyContext = "doce/v1/temporal/payloads"

	// PayloadKeyTTL is how long one data key encrypts before a new one is made. Short enough
	// that a leaked process memory exposes minutes of payloads, long enough to cost Vault one
	// call per process per interval.
	PayloadKeyTTL = 10 * time.Minute
	// maxKeyUses bounds encryptions under one data key, far below AES-GCM's 2^32 random-nonce
	// limit.
	maxKeyUses = 1 << 20
	// openedKeys bounds how many unwrapped data keys are kept for decoding.
	openedKeys = 256
	// vaultTimeout bounds one Vault call made for a payload (the codec interface has no context).
	vaultTimeout = 30 * time.Second
)

// PayloadCodec is a converter.PayloadCodec that encrypts every payload under a data key from
// Vault Transit. Payloads it did not encrypt (recorded before it existed) pass through Decode
// unchanged, so old histories still replay.
type PayloadCodec struct {
	transit *Transit
	now     func() time.Time

	mu      sync.Mutex
	current *dataKey
	opened  map[string]*dataKey // wrapped key → opened key, for Decode
}

type dataKey struct {
	aead    cipher.AEAD
	wrapped string
	made    time.Time
	uses    int
}

// NewPayloadCodec returns a codec whose data keys come from t (bound to the payload key; see
// Transit.WithKey).
func NewPayloadCodec(t *Transit) *PayloadCodec {
	return &PayloadCodec{transit: t, now: time.Now, opened: map[string]*dataKey{}}
}

// DataConverter is Temporal's default converter with c applied to every payload.
func (c *PayloadCodec) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c)
}

// FailureConverter keeps failure messages and stack traces in the encoded attributes, so a
// failure that quotes a prompt or a name is no more readable in history than a payload.
func (c *PayloadCodec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter: c.DataConverter(), EncodeCommonAttributes: true,
	})
}

// Encode implements converter.PayloadCodec.
func (c *PayloadCodec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("secrets: unable to marshal a payload: %w", err)
		}
		k, err := c.sealingKey()
		if err != nil {
			return payloads, err
		}
		nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return payloads, fmt.Errorf("secrets: unable to make a nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(PayloadEncoding),
				metaWrappedKey:             []byte(k.wrapped),
				metaCipher:                 []byte(cipherName),
			},
			Data: k.aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode implements converter.PayloadCodec.
func (c *PayloadCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != PayloadEncoding {
			out[i] = p // written before payloads were encrypted
			continue
		}
		if cn := string(p.Metadata[metaCipher]); cn != cipherName {
			return payloads, fmt.Errorf("secrets: payload encrypted with unknown cipher %q", cn)
		}
		k, err := c.openingKey(string(p.Metadata[metaWrappedKey]))
		if err != nil {
			return payloads, err
		}
		ns := k.aead.NonceSize()
		if len(p.Data) < ns+k.aead.Overhead() {
			return payloads, errors.New("secrets: encrypted payload is truncated")
		}
		plain, err := k.aead.Open(nil, p.Data[:ns], p.Data[ns:], nil)
		if err != nil {
			return payloads, errors.New("secrets: encrypted payload does not decrypt (tampered, or not made with this key)")
		}
		inner := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, inner); err != nil {
			return payloads, fmt.Errorf("secrets: decrypted payload is malformed: %w", err)
		}
		out[i] = inner
	}
	return out, nil
}

// sealingKey returns the data key to encrypt with, making a new one when the current one is
// older than PayloadKeyTTL or has been used maxKeyUses times.
func (c *PayloadCodec) sealingKey() (*dataKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if k := c.current; k != nil && now.Sub(k.made) < PayloadKeyTTL && k.uses < maxKeyUses {
		k.uses++
		return k, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), vaultTimeout)
	defer cancel()
	plain, wrapped, err := c.transit.DataKey(ctx, payloadKeyContext)
	if err != nil {
		return nil, err
	}
	k, err := newDataKey(plain, wrapped, now)
	if err != nil {
		return nil, err
	}
	k.uses = 1
	c.current = k
	c.remember(k)
	return k, nil
}

// openingKey returns the opened data key for wrapped, asking Vault to unwrap it when this
// process has not lately.
func (c *PayloadCodec) openingKey(wrapped string) (*dataKey, error) {
	if wrapped == "" {
		return nil, errors.New("secrets: encrypted payload names no data key")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if k, ok := c.opened[wrapped]; ok && now.Sub(k.made) < PayloadKeyTTL {
		return k, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), vaultTimeout)
	defer cancel()
	plain, err := c.transit.Decrypt(ctx, wrapped, payloadKeyContext)
	if err != nil {
		return nil, fmt.Errorf("secrets: unable to open a payload's data key: %w", err)
	}
	k, err := newDataKey(plain, wrapped, now)
	if err != nil {
		return nil, err
	}
	c.remember(k)
	return k, nil
}

// remember keeps k for Decode. Past openedKeys, expired keys are dropped, and if none had
// expired, all: a replay that needs them asks Vault again.
func (c *PayloadCodec) remember(k *dataKey) {
	if len(c.opened) >= openedKeys {
		for w, o := range c.opened {
			if k.made.Sub(o.made) >= PayloadKeyTTL {
				delete(c.opened, w)
			}
		}
		if len(c.opened) >= openedKeys {
			clear(c.opened)
		}
	}
	c.opened[k.wrapped] = k
}

func newDataKey(plain []byte, wrapped string, made time.Time) (*dataKey, error) {
	if len(plain) != 32 {
		return nil, fmt.Errorf("secrets: a data key of %d bytes, want 32", len(plain))
	}
	block, err := aes.NewCipher(plain)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &dataKey{aead: aead, wrapped: wrapped, made: made}, nil
}

// DataKey asks Transit for a new 256-bit data key bound to keyContext: the key, to encrypt
// with, and the key wrapped by Transit, to keep next to what it encrypted.
func (t *Transit) DataKey(ctx context.Context, keyContext string) (key []byte, wrapped string, err error) {
	start := time.Now()
	defer func() { t.observe("datakey", start, err) }()
	sec, err := t.client.Logical().WriteWithContext(ctx, t.mount+"/datakey/plaintext/"+t.key, map[string]any{
		"context": base64.StdEncoding.EncodeToString([]byte(keyContext)),
		"bits":    256,
	})
	if err != nil {
		return nil, "", fmt.Errorf("secrets: unable to get a data key: %w", err)
	}
	b64, _ := sec.Data["plaintext"].(string)
	wrapped, _ = sec.Data["ciphertext"].(string)
	key, err = base64.StdEncoding.DecodeString(b64)
	if err != nil || wrapped == "" {
		return nil, "", errors.New("secrets: vault returned a malformed data key")
	}
	return key, wrapped, nil
}

// WithKey returns a Transit on the same Vault client and mount bound to another key.
func (t *Transit) WithKey(key string) *Transit {
	return &Transit{client: t.client, mount: t.mount, key: key, Observe: t.Observe}
}
