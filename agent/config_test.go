package agent_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/store"
)

func TestConfig(t *testing.T) {
	conn := &store.ProviderConnection{ProviderID: "custom", BaseURL: "http://llm.internal/v1", ModelIDs: "m1,m2"}
	p := &store.Project{ID: "a", ProviderID: "custom", ModelID: "m1"}
	b, err := agent.Config(p, conn, []string{"bash"})
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
	if cfg["model"] != "custom/m1" || !strings.Contains(string(b), `"baseURL": "http://llm.internal/v1"`) || !strings.Contains(string(b), `"bash": "ask"`) {
		t.Fatalf("config lacks the model, the provider's URL or the asked permission:\n%s", b)
	}

	// Another project with the same settings gets the same bytes; another model does not.
	same, _ := agent.Config(&store.Project{ID: "b", ProviderID: "custom", ModelID: "m1"}, conn, []string{"bash"})
	other, _ := agent.Config(&store.Project{ID: "c", ProviderID: "custom", ModelID: "m2"}, conn, []string{"bash"})
	if agent.ConfigSum(same) != agent.ConfigSum(b) || agent.ConfigSum(other) == agent.ConfigSum(b) {
		t.Fatal("ConfigSum does not follow the configuration's settings")
	}

	base := string(agent.BaseConfig([]string{"bash"}))
	if strings.Contains(base, "model") || strings.Contains(base, "llm.internal") || !strings.Contains(base, `"bash": "ask"`) {
		t.Fatalf("the base configuration holds a project's settings or lacks the deployment's:\n%s", base)
	}
}
