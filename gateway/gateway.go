// Package gateway is the LLM gateway: the only way a workspace's agent reaches a model
// provider. A project's OpenCode holds a gateway token, never the provider key; the gateway
// finds the project and its owner's connection by the token, opens the key through Vault (kept
// in memory briefly, see keyTTL), puts it on the request the way the provider expects, streams the
// answer back as it comes, and records the tokens it used and what they cost. A request that
// would pass a monthly budget is refused in the provider's own error shape.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// Decrypter opens a connection's sealed key (secrets.Transit does, through Vault).
type Decrypter interface {
	Decrypt(ctx context.Context, ciphertext, keyContext string) ([]byte, error)
}

// Gateway serves /p/{provider}/... to workspaces.
type Gateway struct {
	Store   *store.Store
	Secrets Decrypter
	// BaseURLs overrides where providers' APIs live (DOCE_PROVIDER_BASE_URLS).
	BaseURLs map[string]string
	// Transport carries every request upstream: the outbound policy's.
	Transport http.RoundTripper
	// Catalog prices the models; Prices loads it when it has not been read.
	Catalog *catalog.Catalog
	// LoadCatalog reads the owner's catalog from the project's OpenCode; nil leaves it unread.
	LoadCatalog func(ctx context.Context, projectID string)
	Metrics     *metrics.Metrics // optional
	Log         *slog.Logger

	proxy   *httputil.ReverseProxy
	pending sync.WaitGroup // usage being recorded
	keys    *openedKeys
}

// maxBody bounds a request the gateway reads before forwarding: a long conversation with
// images fits, a runaway one does not.
const maxBody = 32 << 20

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler {
	g.keys = newOpenedKeys()
	g.proxy = &httputil.ReverseProxy{
		Rewrite:        rewrite,
		Transport:      g.Transport,
		FlushInterval:  -1, // every write reaches the agent at once: streams stay streams
		ModifyResponse: g.meterResponse,
		ErrorHandler:   g.upstreamFailed,
		ErrorLog:       slog.NewLogLogger(g.Log.Handler(), slog.LevelWarn),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/p/{provider}/{rest...}", g.serve)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		refuse(w, providers.ErrorsOpenAI, http.StatusNotFound, "not_found", "The doce LLM gateway serves /p/<provider>/... only.")
	})
	return mux
}

// call is one request on its way through the gateway.
type call struct {
	grant    *store.GatewayGrant
	provider string
	rule     providers.GatewayRule
	target   *url.URL
	key      string
	model    string
	start    time.Time
}

type callKey struct{}

func (g *Gateway) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx := r.Context()
	providerID := r.PathValue("provider")
	rule, ok := providers.Gateway(providerID)
	if !ok {
		refuse(w, providers.ErrorsOpenAI, http.StatusNotFound, "not_found", "doce's gateway does not serve the provider "+providerID+".")
		return
	}
	token := tokenOf(r)
	if !strings.HasPrefix(token, store.GatewayTokenPrefix) {
		refuse(w, rule.Errors, http.StatusUnauthorized, "authentication_error", "No doce gateway token: the project's credentials were not handed over. Restart the project.")
		return
	}
	grant, err := g.Store.GatewayGrant(ctx, token)
	if errors.Is(err, store.ErrNotFound) {
		refuse(w, rule.Errors, http.StatusUnauthorized, "authentication_error", "The doce gateway token is not valid any more (the connection changed or the project was deleted). Restart the project.")
		return
	} else if err != nil {
		g.Log.Error("gateway: unable to look up a token", "error", err)
		refuse(w, rule.Errors, http.StatusServiceUnavailable, "api_error", "doce's gateway cannot reach its database; try again shortly.")
		return
	}
	p, conn := grant.Project, grant.Connection
	switch {
	case p.ProviderID != providerID:
		refuse(w, rule.Errors, http.StatusForbidden, "permission_error", "This project uses "+p.ProviderID+", not "+providerID+".")
		return
	case conn.Status != store.ConnConnected:
		refuse(w, rule.Errors, http.StatusUnauthorized, "authentication_error", "The "+providerID+" connection is "+conn.Status+". Reconnect it on doce's Providers page.")
		return
	case !providers.Proxied(providerID, conn.AuthType):
		refuse(w, rule.Errors, http.StatusForbidden, "permission_error", "The "+providerID+" connection is not used through doce's gateway.")
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		refuse(w, rule.Errors, http.StatusRequestEntityTooLarge, "invalid_request_error", "The request is larger than doce's gateway takes (32 MiB).")
		return
	}
	model, body := inspect(rule, r.URL.Path, body)

	if msg, over, err := g.overBudget(ctx, grant, model, len(body)); err != nil {
		g.Log.Error("gateway: unable to check the budget", "project_id", p.ID, "error", err)
		refuse(w, rule.Errors, http.StatusServiceUnavailable, "api_error", "doce's gateway cannot check the budget now; try again shortly.")
		return
	} else if over {
		g.record(context.WithoutCancel(ctx), &call{grant: grant, provider: providerID, model: model, start: start}, usage{}, http.StatusPaymentRequired)
		refuse(w, rule.Errors, http.StatusPaymentRequired, "budget_exceeded", msg)
		return
	}

	base := providers.BaseURL(providerID, g.BaseURLs)
	if providerID == providers.CustomID {
		base = conn.BaseURL
	}
	target, err := url.Parse(strings.TrimRight(base, "/") + "/" + r.PathValue("rest"))
	if err != nil || base == "" {
		refuse(w, rule.Errors, http.StatusBadGateway, "api_error", "doce knows no address for "+providerID+".")
		return
	}
	q := r.URL.Query()
	q.Del("key") // Google's SDKs may send the key (here: the token) as a parameter
	target.RawQuery = q.Encode()

	key, err := g.open(ctx, conn)
	if errors.Is(err, secrets.ErrUndecryptable) {
		// Not this row's ciphertext (copied from another user's, or tampered): no retry helps.
		g.Log.Warn("gateway: the stored key does not decrypt for its connection", "project_id", p.ID, "provider", providerID)
		refuse(w, rule.Errors, http.StatusUnauthorized, "authentication_error", "The stored "+providerID+" key cannot be decrypted. Reconnect the provider on doce's Providers page.")
		return
	} else if err != nil {
		g.Log.Error("gateway: unable to decrypt the key", "project_id", p.ID, "provider", providerID, "error", err)
		refuse(w, rule.Errors, http.StatusServiceUnavailable, "api_error", "doce cannot open the stored "+providerID+" key now. If this lasts, reconnect the provider on the Providers page.")
		return
	}
	c := &call{grant: grant, provider: providerID, rule: rule, target: target, key: key, model: model, start: start}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if g.Metrics != nil {
		g.Metrics.GatewayOverhead.Observe(time.Since(start).Seconds())
	}
	g.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
}

// tokenOf finds the gateway token wherever the provider's SDK put the key.
func tokenOf(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	for _, h := range []string{"x-api-key", "x-goog-api-key"} {
		if v := r.Header.Get(h); v != "" {
			return strings.TrimSpace(v)
		}
	}
	return r.URL.Query().Get("key")
}

// credentialHeaders are every header an SDK may carry a key in; none passes upstream as sent.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Cookie"}

// rewrite sends the request to the provider with its key, and nothing of the workspace's
// network or credentials.
func rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*call)
	pr.Out.URL = c.target
	pr.Out.Host = ""
	for _, h := range credentialHeaders {
		pr.Out.Header.Del(h)
	}
	switch c.rule.Key {
	case providers.KeyXAPIKey:
		pr.Out.Header.Set("x-api-key", c.key)
	case providers.KeyXGoogAPIKey:
		pr.Out.Header.Set("x-goog-api-key", c.key)
	default:
		pr.Out.Header.Set("Authorization", "Bearer "+c.key)
	}
}

// inspect reads the model a request asks for and, for an OpenAI-style chat completion
// stream that does not ask for usage, asks for it: without it the stream reports no tokens.
// A body that is not JSON passes unchanged.
func inspect(rule providers.GatewayRule, path string, body []byte) (string, []byte) {
	model := ""
	// Google names the model in the path: .../models/<model>:streamGenerateContent.
	if i := strings.LastIndex(path, "/models/"); i >= 0 {
		model, _, _ = strings.Cut(path[i+len("/models/"):], ":")
	}
	var req map[string]json.RawMessage
	if len(body) == 0 || json.Unmarshal(body, &req) != nil {
		return model, body
	}
	var m string
	if json.Unmarshal(req["model"], &m) == nil && m != "" {
		model = m
	}
	var stream bool
	if !rule.ChatCompletions || !strings.HasSuffix(path, "/chat/completions") || json.Unmarshal(req["stream"], &stream) != nil || !stream {
		return model, body
	}
	var opts map[string]json.RawMessage
	if raw, ok := req["stream_options"]; ok && json.Unmarshal(raw, &opts) != nil {
		return model, body
	}
	if opts == nil {
		opts = map[string]json.RawMessage{}
	}
	if string(opts["include_usage"]) == "true" {
		return model, body
	}
	opts["include_usage"] = json.RawMessage("true")
	req["stream_options"], _ = json.Marshal(opts)
	if b, err := json.Marshal(req); err == nil {
		body = b
	}
	return model, body
}

// upstreamFailed answers when the provider could not be reached.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	c := r.Context().Value(callKey{}).(*call)
	status := http.StatusBadGateway
	if errors.Is(err, context.Canceled) {
		status = 499 // the agent went away (an abort): nobody reads an answer
	}
	g.Log.Warn("gateway: provider unreachable", "project_id", c.grant.Project.ID, "provider", c.provider, "host", c.target.Host, "error", err)
	g.record(context.WithoutCancel(r.Context()), c, usage{}, status)
	if status == http.StatusBadGateway {
		refuse(w, c.rule.Errors, status, "api_error", "doce's gateway could not reach "+c.provider+".")
	}
}

// refuse answers in the provider's own error shape, so the agent shows msg as the provider's
// error in the conversation.
func refuse(w http.ResponseWriter, shape string, status int, typ, msg string) {
	var body any
	switch shape {
	case providers.ErrorsAnthropic:
		body = map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}
	case providers.ErrorsGoogle:
		body = map[string]any{"error": map[string]any{"code": status, "message": msg, "status": googleStatus(status)}}
	default:
		body = map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": typ}}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body) // the agent went away: nothing to tell it
}

func googleStatus(code int) string {
	switch code {
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusPaymentRequired:
		return "RESOURCE_EXHAUSTED"
	default:
		return "UNAVAILABLE"
	}
}
