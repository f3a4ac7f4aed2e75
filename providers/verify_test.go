package providers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/outbound"
)

func Lookup2(t *testing.T, id string) Provider {
	t.Helper()
	p, ok := Lookup(id)
	if !ok {
		t.Fatalf("no provider %s", id)
	}
	return p
}

func TestVerify(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer sk-good":
			w.Write([]byte(`{"data":[]}`))
		case "Bearer sk-broken":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":{"message":"Incorrect API key provided: ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `"}}`))
		}
	}))
	defer srv.Close()
	custom, _ := Lookup(CustomID)
	openai, _ := Lookup("openai")
	// The test server is on loopback, which the outbound policy refuses unless allowed.
	refused := (&Verifier{}).Verify(context.Background(), Lookup2(t, CustomID), "sk-good", srv.URL+"/v1")
	var fe0 *FieldError
	if !errors.As(refused, &fe0) || fe0.Field != "baseURL" || fe0.Message != ErrURLRefused {
		t.Fatalf("loopback without allowing it: %v", refused)
	}
	policy, _ := outbound.Parse("127.0.0.1")
	v := &Verifier{HTTP: policy.Client(10 * time.Second), BaseURLs: map[string]string{"openai": srv.URL + "/v1"}}
	ctx := context.Background()

	if err := v.Verify(ctx, custom, "sk-good", srv.URL+"/v1"); err != nil {
		t.Errorf("good key: %v", err)
	}
	if err := v.Verify(ctx, openai, "sk-good", ""); err != nil {
		t.Errorf("good key at a configured base URL: %v", err)
	}
	err := v.Verify(ctx, custom, "sk-bad-secret", srv.URL+"/v1")
	var fe *FieldError
	if !errors.As(err, &fe) || !strings.Contains(fe.Message, "refused this key: Incorrect API key provided") {
		t.Fatalf("bad key: %v", err)
	}
	if strings.Contains(fe.Message, "sk-bad-secret") {
		t.Errorf("the reason repeats the key: %s", fe.Message)
	}
	if err := v.Verify(ctx, custom, "sk-broken", srv.URL+"/v1"); err == nil || errors.As(err, &fe) {
		t.Errorf("provider failure reported as %v, want a non-field error", err)
	}
}

func TestParseBaseURLs(t *testing.T) {
	m, err := ParseBaseURLs("openai=http://127.0.0.1:9/v1, anthropic=https://gw.example/anthropic/")
	if err != nil || m["openai"] != "http://127.0.0.1:9/v1" || m["anthropic"] != "https://gw.example/anthropic" {
		t.Errorf("%v %v", m, err)
	}
	for _, bad := range []string{"nope=http://x", "openai", "openai=ftp://x"} {
		if _, err := ParseBaseURLs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
