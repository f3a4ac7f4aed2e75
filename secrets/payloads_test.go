package secrets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

// payloadTransit is a Transit on the test Vault with a payload key of its own, counting the
// data keys it hands out and the ones it opens.
func payloadTransit(t *testing.T) (*Transit, *atomic.Int32, *atomic.Int32) {
	t.Helper()
	addr, token := os.Getenv("DOCE_TEST_VAULT_ADDR"), os.Getenv("DOCE_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but DOCE_TEST_VAULT_ADDR/TOKEN are missing")
		}
		t.Skip("needs a Vault server: run `make test`")
	}
	tr, err := NewTransit(addr, token, "transit", fmt.Sprintf("payloads-test-%d", time.Now().UnixNano()), 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	var made, opened atomic.Int32
	tr.Observe = func(op string, _ time.Duration, err error) {
		if err == nil && op == "datakey" {
			made.Add(1)
		} else if err == nil && op == "decrypt" {
			opened.Add(1)
		}
	}
	return tr, &made, &opened
}

type setupInput struct{ Prompt, ProjectName, Username string }

func TestPayloadCodec(t *testing.T) {
	tr, made, opened := payloadTransit(t)
	codec := NewPayloadCodec(tr)
	clock := time.Now()
	codec.now = func() time.Time { return clock }
	dc := codec.DataConverter()
	in := setupInput{Prompt: "Build a secret page", ProjectName: "Project Nightingale", Username: "margaret"}

	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	raw := p.String()
	for _, clear := range []string{in.Prompt, in.ProjectName, in.Username} {
		if strings.Contains(raw, clear) {
			t.Errorf("the encoded payload holds %q in clear", clear)
		}
	}
	if enc := string(p.Metadata[converter.MetadataEncoding]); enc != PayloadEncoding || !strings.HasPrefix(string(p.Metadata[metaWrappedKey]), "vault:v1:") {
		t.Fatalf("metadata %v", p.Metadata)
	}
	var out setupInput
	if err := dc.FromPayload(p, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v %v", out, err)
	}

	// One data key serves many payloads until it is PayloadKeyTTL old; then a new one.
	for range 50 {
		if _, err := dc.ToPayload(in); err != nil {
			t.Fatal(err)
		}
	}
	if made.Load() != 1 {
		t.Errorf("%d data keys for 51 payloads within the TTL, want 1", made.Load())
	}
	clock = clock.Add(PayloadKeyTTL + time.Second)
	p2, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if made.Load() != 2 || string(p2.Metadata[metaWrappedKey]) == string(p.Metadata[metaWrappedKey]) {
		t.Errorf("after the TTL: %d data keys, same wrapped key %v; want a second key", made.Load(), string(p2.Metadata[metaWrappedKey]) == string(p.Metadata[metaWrappedKey]))
	}

	// Another process (a fresh codec) opens the data key through Vault once, then from memory.
	other := NewPayloadCodec(tr)
	before := opened.Load()
	for range 3 {
		var got setupInput
		if err := other.DataConverter().FromPayload(p2, &got); err != nil || got != in {
			t.Fatalf("another codec decoding: %+v %v", got, err)
		}
	}
	if n := opened.Load() - before; n != 1 {
		t.Errorf("%d Vault decrypts for three payloads under one key, want 1", n)
	}

	// Payloads written before encryption pass through.
	plain, _ := converter.GetDefaultDataConverter().ToPayload(in)
	if got, err := codec.Decode([]*commonpb.Payload{plain}); err != nil || got[0] != plain {
		t.Errorf("plaintext payload: %v %v", got, err)
	}

	// Tampering, a foreign key and an unknown cipher are refused, never mis-decoded.
	tampered := &commonpb.Payload{Metadata: p2.Metadata, Data: append([]byte{}, p2.Data...)}
	tampered.Data[len(tampered.Data)-1] ^= 1
	foreignTr, _, _ := payloadTransit(t)
	foreign, err := NewPayloadCodec(foreignTr).Encode([]*commonpb.Payload{plain})
	if err != nil {
		t.Fatal(err)
	}
	badCipher := &commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte(PayloadEncoding), metaCipher: []byte("ROT13"), metaWrappedKey: p2.Metadata[metaWrappedKey]}, Data: p2.Data}
	for name, bad := range map[string]*commonpb.Payload{"tampered": tampered, "another key's": foreign[0], "unknown cipher": badCipher} {
		if _, err := codec.Decode([]*commonpb.Payload{bad}); err == nil {
			t.Errorf("%s payload decoded", name)
		}
	}

	// Failures keep their message in the encrypted attributes.
	fc := codec.FailureConverter()
	f := fc.ErrorToFailure(fmt.Errorf("setting up %s failed", in.ProjectName))
	if strings.Contains(f.String(), in.ProjectName) {
		t.Error("a failure message is in clear")
	}
	if err := fc.FailureToError(f); err == nil || !strings.Contains(err.Error(), in.ProjectName) {
		t.Errorf("failure round trip: %v", err)
	}
}
