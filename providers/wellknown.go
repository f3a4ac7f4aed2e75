package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/doce-dev/doce/outbound"
)

// WellKnown is what doce needs from an organisation's /.well-known/opencode document: the
// environment variable OpenCode hands the token to, and the models its configuration defines
// ("provider/model").
type WellKnown struct {
	Env    string
	Models []string
}

// FetchWellKnown reads <base>/.well-known/opencode, as OpenCode itself will at every start.
func FetchWellKnown(ctx context.Context, hc *http.Client, base string) (WellKnown, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/.well-known/opencode", nil)
	if err != nil {
		return WellKnown{}, err
	}
	if hc == nil {
		hc = strictClient
	}
	resp, err := hc.Do(req)
	if outbound.Refused(err) {
		return WellKnown{}, &FieldError{Field: "wellKnownUrl", Message: ErrURLRefused}
	}
	if err != nil {
		return WellKnown{}, fieldErr("wellKnownUrl", "doce could not reach %s/.well-known/opencode. Check the URL, and that it is reachable from doce and its workspaces.", base)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return WellKnown{}, fieldErr("wellKnownUrl", "%s/.well-known/opencode answered HTTP %d; it must serve the organisation's OpenCode configuration.", base, resp.StatusCode)
	}
	var doc struct {
		Auth struct {
			Env string `json:"env"`
		} `json:"auth"`
		Config struct {
			Provider map[string]struct {
				Models map[string]json.RawMessage `json:"models"`
			} `json:"provider"`
		} `json:"config"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return WellKnown{}, fieldErr("wellKnownUrl", "%s/.well-known/opencode is not a JSON document.", base)
	}
	if doc.Auth.Env == "" || strings.IndexFunc(doc.Auth.Env, func(r rune) bool { return !(r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r)) }) >= 0 {
		return WellKnown{}, fieldErr("wellKnownUrl", "%s/.well-known/opencode names no token variable (auth.env).", base)
	}
	wk := WellKnown{Env: doc.Auth.Env}
	for p, cfg := range doc.Config.Provider {
		for m := range cfg.Models {
			wk.Models = append(wk.Models, p+"/"+m)
		}
	}
	sort.Strings(wk.Models)
	if len(wk.Models) == 0 {
		return WellKnown{}, fieldErr("wellKnownUrl", "%s/.well-known/opencode defines no models (config.provider.*.models).", base)
	}
	return wk, nil
}

// ValidateToken checks a well-known token.
func ValidateToken(token string) error {
	switch {
	case token == "":
		return fieldErr("token", "Enter the token your organisation gave you.")
	case len(token) > MaxKeyLen:
		return fieldErr("token", "That token is %d characters long; tokens are at most %d.", len(token), MaxKeyLen)
	case strings.IndexFunc(token, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fieldErr("token", "The token contains spaces or control characters. Paste only the token itself.")
	}
	return nil
}

// SplitModel splits "provider/model" as a well-known configuration's models are named.
func SplitModel(id string) (provider, model string, err error) {
	provider, model, ok := strings.Cut(id, "/")
	if !ok || provider == "" || model == "" {
		return "", "", fmt.Errorf("providers: %q is not provider/model", id)
	}
	return provider, model, nil
}
