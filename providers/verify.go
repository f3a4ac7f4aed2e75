package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/doce-dev/doce/outbound"
)

// Verifier asks a provider whether a key works, by listing its models with it.
type Verifier struct {
	HTTP *http.Client
	// BaseURLs overrides where a provider's API lives (DOCE_PROVIDER_BASE_URLS), e.g. for a
	// company gateway or a test server.
	BaseURLs map[string]string
}

// ErrURLRefused is all a user learns when the outbound policy refuses an address.
const ErrURLRefused = outbound.RefusedMessage

// strictClient is used when no client is given: the outbound policy with nothing allowed.
var strictClient = (&outbound.Policy{}).Client(30 * time.Second)

// defaultBaseURLs are the public APIs' addresses.
var defaultBaseURLs = map[string]string{
	"openrouter": "https://openrouter.ai/api/v1",
	"anthropic":  "https://api.anthropic.com/v1",
	"openai":     "https://api.openai.com/v1",
	"groq":       "https://api.groq.com/openai/v1",
	"google":     "https://generativelanguage.googleapis.com/v1beta",
}

// Verify checks key against provider p (for a custom provider, at baseURL). A key the provider
// refuses is a *FieldError carrying the provider's reason; an unreachable provider is an error
// of its own, so the caller can tell "bad key" from "could not ask".
func (v *Verifier) Verify(ctx context.Context, p Provider, key, baseURL string) error {
	base := baseURL
	if !p.Custom {
		base = BaseURL(p.ID, v.BaseURLs)
	}
	if base == "" {
		return fmt.Errorf("providers: no API address known for %s", p.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := strings.TrimRight(base, "/") + "/models"
	if p.ID == "openrouter" {
		u = strings.TrimRight(base, "/") + "/key" // /models answers without a key
	}
	if p.ID == "google" {
		u += "?key=" + url.QueryEscape(key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("providers: unable to build the check of %s: %w", p.ID, err)
	}
	switch p.ID {
	case "anthropic":
		req.Header.Set("x-api-key", key)
		req.Header.Set("anthropic-version", "2023-06-01")
	case "google":
	default:
		req.Header.Set("Authorization", "Bearer "+key)
	}
	hc := v.HTTP
	if hc == nil {
		hc = strictClient
	}
	resp, err := hc.Do(req)
	if outbound.Refused(err) {
		field := "baseURL"
		if !p.Custom {
			field = "providerId" // the operator's DOCE_PROVIDER_BASE_URLS
		}
		return &FieldError{Field: field, Message: ErrURLRefused}
	}
	if err != nil {
		// The URL may carry the key (google): say where, not the URL.
		return fmt.Errorf("providers: %s did not answer the key check", p.Name)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		reason := providerReason(body, key)
		if reason == "" {
			reason = http.StatusText(resp.StatusCode)
		}
		return &FieldError{Field: "apiKey", Message: fmt.Sprintf("%s refused this key: %s", p.Name, reason)}
	default:
		return fmt.Errorf("providers: %s answered the key check with HTTP %d", p.Name, resp.StatusCode)
	}
}

// providerReason digs the message out of the usual error bodies, without the key.
func providerReason(body []byte, key string) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(e.Error, &inner) == nil && inner.Message != "":
			msg = inner.Message
		case json.Unmarshal(e.Error, &s) == nil:
			msg = s
		default:
			msg = e.Message
		}
	}
	if key != "" {
		msg = strings.ReplaceAll(msg, key, "…")
	}
	return truncate(strings.TrimSpace(msg), 200)
}

// ParseBaseURLs reads "id=url,id=url" (DOCE_PROVIDER_BASE_URLS).
func ParseBaseURLs(s string) (map[string]string, error) {
	pairs, err := ParsePairs(s)
	if err != nil {
		return nil, err
	}
	for id, raw := range pairs {
		u, err := ValidateBaseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		pairs[id] = u
	}
	return pairs, nil
}

// ParsePairs reads "provider=value,provider=value" with known provider ids and non-empty values.
func ParsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		id, v, ok := strings.Cut(kv, "=")
		if _, known := Lookup(id); !ok || !known || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%q is not provider=value with a known provider", kv)
		}
		out[id] = strings.TrimSpace(v)
	}
	return out, nil
}
