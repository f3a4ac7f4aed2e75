package agent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/store"
)

func TestConfig(t *testing.T) {
	const gw = "http://host.docker.internal:8081"
	conn := &store.ProviderConnection{ProviderID: "custom", AuthType: store.AuthAPI, BaseURL: "http://llm.internal/v1", ModelIDs: "m1,m2"}
	p := &store.Project{ID: "a", ProviderID: "custom", ModelID: "m1"}
	b, err := agent.Config(p, conn, []string{"bash"}, gw)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	// OpenCode rewrites a file without $schema when it loads it; one with it stays as written.
	if !strings.HasPrefix(string(b), "{\n  \"$schema\": \"https://opencode.ai/config.json\",") {
		t.Fatalf("config does not name OpenCode's schema first:\n%s", b)
	}
	// The workspace reaches the provider through the gateway only: the provider's own address
	// is the gateway's to know.
	if cfg["model"] != "custom/m1" || !strings.Contains(string(b), `"baseURL": "`+gw+`/p/custom"`) || !strings.Contains(string(b), `"bash": "ask"`) {
		t.Fatalf("config lacks the model, the gateway's URL or the asked permission:\n%s", b)
	}
	if strings.Contains(string(b), "llm.internal") {
		t.Fatalf("config names the provider's own address:\n%s", b)
	}

	// Another project with the same settings gets the same bytes; another model does not.
	same, _ := agent.Config(&store.Project{ID: "b", ProviderID: "custom", ModelID: "m1"}, conn, []string{"bash"}, gw)
	other, _ := agent.Config(&store.Project{ID: "c", ProviderID: "custom", ModelID: "m2"}, conn, []string{"bash"}, gw)
	if agent.ConfigSum(same) != agent.ConfigSum(b) || agent.ConfigSum(other) == agent.ConfigSum(b) {
		t.Fatal("ConfigSum does not follow the configuration's settings")
	}

	// A built-in provider's API key goes through the gateway too; a sign-in does not.
	anth, _ := agent.Config(&store.Project{ProviderID: "anthropic", ModelID: "claude-haiku-4-5"}, &store.ProviderConnection{ProviderID: "anthropic", AuthType: store.AuthAPI}, nil, gw)
	if !strings.Contains(string(anth), `"baseURL": "`+gw+`/p/anthropic"`) {
		t.Fatalf("an Anthropic key is not used through the gateway:\n%s", anth)
	}
	copilot, _ := agent.Config(&store.Project{ProviderID: "github-copilot", ModelID: "gpt-4.1"}, &store.ProviderConnection{ProviderID: "github-copilot", AuthType: store.AuthOAuth}, nil, gw)
	if strings.Contains(string(copilot), "baseURL") {
		t.Fatalf("a sign-in the gateway cannot serve is pointed at it:\n%s", copilot)
	}

	base := string(agent.BaseConfig([]string{"bash"}))
	if strings.Contains(base, "model") || strings.Contains(base, "llm.internal") || !strings.Contains(base, `"bash": "ask"`) {
		t.Fatalf("the base configuration holds a project's settings or lacks the deployment's:\n%s", base)
	}
}
