package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/store"
)

// Model is the provider/model id a project's OpenCode runs by default.
func Model(p *store.Project) string {
	if p.ProviderID == providers.WellKnownID {
		return p.ModelID // already provider/model, from the organisation's configuration
	}
	return p.ProviderID + "/" + p.ModelID
}

// Config is the workspace's opencode.json: the project's model as default; for a provider
// used through the LLM gateway, the gateway (at gatewayURL, as workspaces reach it) as the
// provider's base URL, and for a custom OpenAI-compatible provider which models it serves; ask
// names the permissions the agent asks for first (the page answers them). It holds no secret:
// what OpenCode sends the gateway, a gateway token, reaches it only through PUT /auth. Two
// projects with the same provider, model and connection settings get the same bytes, which is
// what lets a prebuilt workspace started on one serve the other.
func Config(p *store.Project, conn *store.ProviderConnection, ask []string, gatewayURL string) ([]byte, error) {
	cfg := baseConfig(ask)
	cfg["model"] = Model(p)
	if providers.Proxied(p.ProviderID, conn.AuthType) {
		entry := map[string]any{"options": map[string]any{"baseURL": GatewayBaseURL(gatewayURL, p.ProviderID)}}
		if prov, _ := providers.Lookup(p.ProviderID); prov.Custom {
			models := map[string]any{}
			for _, m := range conn.Models() {
				models[m] = map[string]any{"name": m}
			}
			entry["npm"], entry["name"], entry["models"] = "@ai-sdk/openai-compatible", prov.Name, models
		}
		cfg["provider"] = map[string]any{p.ProviderID: entry}
	}
	return json.MarshalIndent(cfg, "", "  ")
}

// GatewayBaseURL is where a workspace's OpenCode sends providerID's requests: the gateway's
// path for the provider, standing for the provider's API base URL.
func GatewayBaseURL(gatewayURL, providerID string) string {
	return strings.TrimRight(gatewayURL, "/") + "/p/" + providerID
}

// BaseConfig is the opencode.json of a prebuilt workspace before doce knows what projects
// need: the settings every project shares, nothing of any user's.
func BaseConfig(ask []string) []byte {
	b, _ := json.MarshalIndent(baseConfig(ask), "", "  ")
	return b
}

// configSchema is what OpenCode writes into an opencode.json that names no schema when it
// loads it; naming it here keeps the file as doce wrote it, so its sum still says what it is.
const configSchema = "https://opencode.ai/config.json"

func baseConfig(ask []string) map[string]any {
	cfg := map[string]any{"$schema": configSchema, "autoupdate": false, "share": "disabled"}
	if len(ask) > 0 {
		perms := map[string]string{}
		for _, perm := range ask {
			perms[perm] = "ask"
		}
		cfg["permission"] = perms
	}
	return cfg
}

// ConfigSum names a configuration by its content: what a prebuilt workspace records of the
// configuration it started on, and what a new project's must equal for it to be claimed.
func ConfigSum(config []byte) string {
	sum := sha256.Sum256(config)
	return hex.EncodeToString(sum[:])
}
