// Package providers is the catalog of AI model providers a user can connect, with the rules
// their credentials must follow.
package providers

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// Provider is one entry of the catalog. ID is also the provider id OpenCode knows it by.
type Provider struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	AuthMethods []string `json:"authMethods"`
	KeyPrefix   string   `json:"keyPrefix,omitempty"`
	// Custom providers speak the OpenAI API at a base URL the user gives, serving the models
	// the user lists (vLLM, LM Studio, Ollama, a company gateway).
	Custom bool `json:"custom,omitempty"`
	// Models offered when creating a project; a custom provider's come from its connection.
	Models []string `json:"models,omitempty"`
	// OAuth is how a user signs in to the provider, for providers with the "oauth" method.
	OAuth *OAuth `json:"oauth,omitempty"`
}

// OAuth flows: how a provider's device login deviates from RFC 8628, if at all.
const (
	// FlowGitHubDevice is RFC 8628 at GitHub's paths (/login/device/code,
	// /login/oauth/access_token), errors answered with HTTP 200 as GitHub does.
	FlowGitHubDevice = "github-device"
	// FlowOpenAIDevice is ChatGPT's own device login: a user code from
	// /api/accounts/deviceauth/usercode, polled at /api/accounts/deviceauth/token for an
	// authorization code, exchanged with PKCE at /oauth/token.
	FlowOpenAIDevice = "openai-device"
)

// OAuth is a provider's sign-in. The defaults are the values OpenCode itself uses for the
// provider, so the tokens doce obtains work there; operators can point them elsewhere
// (DOCE_OAUTH_URLS, DOCE_OAUTH_CLIENT_IDS, DOCE_OAUTH_SCOPES).
type OAuth struct {
	Flow     string   `json:"flow"`
	Label    string   `json:"label"` // the button: "Log in with GitHub Copilot"
	URL      string   `json:"-"`     // the authorization server the flow's paths hang off
	ClientID string   `json:"-"`
	Scopes   []string `json:"-"`
	// Enterprise: the user may name their own host (GitHub Enterprise) instead of URL.
	Enterprise bool `json:"enterprise,omitempty"`
}

// CustomID is the id of the custom OpenAI-compatible provider.
const CustomID = "custom"

// WellKnownID is the id of enterprise well-known connections.
const WellKnownID = "wellknown"

var catalog = []Provider{
	{ID: "openrouter", Name: "OpenRouter", AuthMethods: []string{"api"}, KeyPrefix: "sk-or-",
		Models: []string{"anthropic/claude-sonnet-4.5", "openai/gpt-5", "google/gemini-2.5-pro"}},
	{ID: "anthropic", Name: "Anthropic", AuthMethods: []string{"api"}, KeyPrefix: "sk-ant-",
		Models: []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"}},
	{ID: "openai", Name: "OpenAI", AuthMethods: []string{"api", "oauth"}, KeyPrefix: "sk-",
		Models: []string{"gpt-5", "gpt-5-mini", "gpt-4.1"},
		OAuth: &OAuth{Flow: FlowOpenAIDevice, Label: "Log in with ChatGPT", URL: "https://auth.openai.com",
			ClientID: "app_EMoamEEZ73f0CkXaXp7hrann", Scopes: []string{"openid", "profile", "email", "offline_access"}}},
	{ID: "google", Name: "Google (Gemini)", AuthMethods: []string{"api"},
		Models: []string{"gemini-2.5-pro", "gemini-2.5-flash"}},
	{ID: "groq", Name: "Groq", AuthMethods: []string{"api"}, KeyPrefix: "gsk_",
		Models: []string{"llama-3.3-70b-versatile", "openai/gpt-oss-120b"}},
	// GitHub Copilot signs in with GitHub's device flow; it has no API key.
	{ID: "github-copilot", Name: "GitHub Copilot", AuthMethods: []string{"oauth"},
		Models: []string{"gpt-4.1", "claude-sonnet-4"},
		OAuth: &OAuth{Flow: FlowGitHubDevice, Label: "Log in with GitHub Copilot", URL: "https://github.com",
			ClientID: "Ov23li8tweQw6odWQebz", Scopes: []string{"read:user"}, Enterprise: true}},
	{ID: CustomID, Name: "Custom (OpenAI-compatible)", AuthMethods: []string{"api"}, Custom: true},
	// An organisation's OpenCode configuration, served at <url>/.well-known/opencode, with a
	// token OpenCode hands to the providers that configuration defines.
	{ID: WellKnownID, Name: "Enterprise (well-known configuration)", AuthMethods: []string{"wellknown"}},
}

// All returns the catalog.
func All() []Provider { return slices.Clone(catalog) }

// OAuthProviders returns the providers users can sign in to.
func OAuthProviders() []Provider {
	var out []Provider
	for _, p := range catalog {
		if p.OAuth != nil {
			out = append(out, p)
		}
	}
	return out
}

// Lookup returns the provider with id.
func Lookup(id string) (Provider, bool) {
	for _, p := range catalog {
		if p.ID == id {
			return p, true
		}
	}
	return Provider{}, false
}

// MaxKeyLen bounds an API key; real keys are well under 300 characters.
const MaxKeyLen = 4096

// FieldError says which input is wrong and what to do about it, in words a person can act on.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Supports reports whether p can be connected with auth method m.
func (p Provider) Supports(m string) bool { return slices.Contains(p.AuthMethods, m) }

// ValidateKey checks an API key for p. The message never repeats the key.
func (p Provider) ValidateKey(key string) error {
	switch {
	case !p.Supports("api"):
		return fieldErr("providerId", "%s has no API keys; it connects by signing in (OAuth).", p.Name)
	case key == "":
		return fieldErr("apiKey", "Enter the API key from your %s account.", p.Name)
	case len(key) > MaxKeyLen:
		return fieldErr("apiKey", "That key is %d characters long; API keys are at most %d. Check you pasted only the key.", len(key), MaxKeyLen)
	case strings.IndexFunc(key, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fieldErr("apiKey", "The key contains spaces or control characters. Paste only the key itself.")
	case p.KeyPrefix != "" && !strings.HasPrefix(key, p.KeyPrefix):
		return fieldErr("apiKey", "%s keys start with %q. Check you copied a %s key.", p.Name, p.KeyPrefix, p.Name)
	}
	return nil
}

// ValidateBaseURL checks a custom provider's base URL.
func ValidateBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", fieldErr("baseURL", "Enter the base URL of the OpenAI-compatible API, e.g. http://llm.internal:8000/v1.")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 {
		return "", fieldErr("baseURL", "%q is not an http(s) URL. Use a URL such as http://llm.internal:8000/v1.", truncate(raw, 80))
	}
	if u.User != nil {
		return "", fieldErr("baseURL", "Put credentials in the API key field, not in the URL.")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// ValidateModelIDs parses a comma-separated list of model ids for a custom provider.
func ValidateModelIDs(raw string) ([]string, error) {
	var ids []string
	for _, id := range strings.Split(raw, ",") {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if len(id) > 200 || strings.IndexFunc(id, func(r rune) bool { return unicode.IsControl(r) || r == ',' }) >= 0 {
			return nil, fieldErr("models", "%q is not a valid model id.", truncate(id, 40))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, fieldErr("models", "List at least one model id the API serves, e.g. llama-3.1-8b.")
	}
	return ids, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
