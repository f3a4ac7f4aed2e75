package providers

import "strings"

// How the LLM gateway puts a key on a provider's request.
const (
	KeyBearer      = "bearer"         // Authorization: Bearer <key>
	KeyXAPIKey     = "x-api-key"      // Anthropic
	KeyXGoogAPIKey = "x-goog-api-key" // Google's Gemini API
)

// Error shapes the gateway answers in, so the agent shows its refusals like the provider's own.
const (
	ErrorsOpenAI    = "openai"    // {"error":{"message","type","code"}}
	ErrorsAnthropic = "anthropic" // {"type":"error","error":{"type","message"}}
	ErrorsGoogle    = "google"    // {"error":{"code","message","status"}}
)

// GatewayRule is how the gateway forwards to a provider.
type GatewayRule struct {
	Key    string // KeyBearer, KeyXAPIKey or KeyXGoogAPIKey
	Errors string // ErrorsOpenAI, ErrorsAnthropic or ErrorsGoogle
	// ChatCompletions: the provider speaks OpenAI's chat completions, whose streams report
	// usage only when asked (stream_options.include_usage); the gateway asks.
	ChatCompletions bool
}

// gatewayRules is every provider the gateway forwards to, with its API key. The others keep
// their credential in the workspace: OAuth sign-ins (GitHub Copilot, ChatGPT), whose OpenCode
// plugins talk to endpoints of their own with headers of their own, and well-known
// configurations, whose providers the organisation defines.
var gatewayRules = map[string]GatewayRule{
	"openai":     {Key: KeyBearer, Errors: ErrorsOpenAI, ChatCompletions: true},
	"openrouter": {Key: KeyBearer, Errors: ErrorsOpenAI, ChatCompletions: true},
	"groq":       {Key: KeyBearer, Errors: ErrorsOpenAI, ChatCompletions: true},
	CustomID:     {Key: KeyBearer, Errors: ErrorsOpenAI, ChatCompletions: true},
	"anthropic":  {Key: KeyXAPIKey, Errors: ErrorsAnthropic},
	"google":     {Key: KeyXGoogAPIKey, Errors: ErrorsGoogle},
}

// Gateway returns how the gateway forwards to provider id.
func Gateway(id string) (GatewayRule, bool) {
	r, ok := gatewayRules[id]
	return r, ok
}

// Proxied reports whether a connection of authType to provider id is used through the
// gateway; when not, its credential is handed to the workspace's OpenCode.
func Proxied(id, authType string) bool {
	_, ok := gatewayRules[id]
	return ok && authType == "api"
}

// BaseURL is where provider id's API lives: the operator's override (DOCE_PROVIDER_BASE_URLS)
// or the public address; "" for a custom provider, whose connection says.
func BaseURL(id string, overrides map[string]string) string {
	if u := overrides[id]; u != "" {
		return strings.TrimRight(u, "/")
	}
	return defaultBaseURLs[id]
}
