package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestKeyCheckOutboundPolicy: the key check of a custom provider at host.docker.internal reaches
// the mock LLM on the Docker bridge's gateway, as a workspace would; an address the operator did
// not allow (another loopback address here, so nothing leaves the machine) is refused with the
// same words for a key check and a well-known connect; and a doce that does not allow the
// gateway refuses host.docker.internal.
func TestKeyCheckOutboundPolicy(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	const refused = "Could not use that URL."
	signIn := func(doce *doceProcess) *recordingClient {
		hc := newClient(t)
		if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("setup: %v", err)
		}
		return hc
	}

	doce := startDoce(t, stack, fmt.Sprintf("e2e-outbound-%d", time.Now().UnixNano()))
	hc := signIn(doce)
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": "sk-e2e-checked", "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model", "verify": true})
	if status != http.StatusCreated {
		t.Fatalf("verified connect at host.docker.internal: %d %s", status, body)
	}
	checked := false
	for _, r := range llm.requests() {
		checked = checked || r.Path == "/v1/models" && r.Authorization == "Bearer sk-e2e-checked"
	}
	if !checked {
		t.Fatalf("the mock LLM saw no key check: %+v", llm.requests())
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": "sk-e2e-other", "baseURL": "http://127.0.0.2:" + llm.port() + "/v1", "models": "mock-model", "verify": true, "replace": true})
	expectError(t, status, body, http.StatusBadRequest, refused)
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "wellknown", "wellKnownUrl": "http://127.0.0.2:9", "token": "corp-token"})
	expectError(t, status, body, http.StatusBadRequest, refused)

	strict := startDoce(t, stack, fmt.Sprintf("e2e-outbound-strict-%d", time.Now().UnixNano()), "DOCE_ALLOWED_PRIVATE_HOSTS=127.0.0.1")
	hc = signIn(strict)
	status, body = apiCall(t, hc, strict.URL, "POST", "/api/v1/connections", map[string]any{
		"providerId": "custom", "apiKey": "sk-e2e-strict", "baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model", "verify": true})
	expectError(t, status, body, http.StatusBadRequest, refused)
}
