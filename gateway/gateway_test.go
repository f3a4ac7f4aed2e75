package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// plainCipher stands in for Vault: a "ciphertext" is the key context and the plaintext, so a
// key copied into another row's context does not open.
type plainCipher struct{}

func seal(keyContext, plaintext string) string { return "sealed:" + keyContext + ":" + plaintext }

func (plainCipher) Decrypt(_ context.Context, ciphertext, keyContext string) ([]byte, error) {
	rest, ok := strings.CutPrefix(ciphertext, "sealed:"+keyContext+":")
	if !ok {
		return nil, secrets.ErrUndecryptable
	}
	return []byte(rest), nil
}

// upstream is a provider: it records what reached it and streams an OpenAI-style answer with
// usage when asked for it.
type upstream struct {
	*httptest.Server
	mu  sync.Mutex
	got []*http.Request
	bod []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.got, u.bod = append(u.got, r), append(u.bod, string(b))
		u.mu.Unlock()
		var req struct {
			Stream        bool `json:"stream"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		json.Unmarshal(b, &req)
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"x","choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":200,"prompt_tokens_details":{"cached_tokens":400}}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		w.(http.Flusher).Flush()
		if req.StreamOptions.IncludeUsage {
			fmt.Fprint(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5}}\n\n")
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() (*http.Request, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got[len(u.got)-1], u.bod[len(u.bod)-1]
}

type rig struct {
	st  *store.Store
	gw  *Gateway
	srv *httptest.Server
	up  *upstream
	cat *catalog.Catalog
}

func newRig(t *testing.T) *rig {
	r := &rig{st: storetest.Open(t, storetest.SQLite), up: newUpstream(t), cat: &catalog.Catalog{}}
	r.gw = &Gateway{Store: r.st, Secrets: plainCipher{}, Transport: http.DefaultTransport, Catalog: r.cat,
		BaseURLs: map[string]string{"openrouter": r.up.URL + "/api/v1", "anthropic": r.up.URL + "/v1"},
		Log:      slog.New(slog.DiscardHandler)}
	r.srv = httptest.NewServer(r.gw.Handler())
	t.Cleanup(r.srv.Close)
	return r
}

// project makes a user with a connection to providerID holding key, a project on it, and the
// project's gateway token.
func (r *rig) project(t *testing.T, user, providerID, key string) (*store.Project, string) {
	ctx := context.Background()
	u, err := r.st.UserByUsername(ctx, user)
	if err != nil {
		u = &store.User{Username: user, PasswordHash: "h", Role: store.RoleUser}
		if err := r.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := r.st.Connection(ctx, u.ID, providerID)
	if err != nil {
		conn = &store.ProviderConnection{UserID: u.ID, ProviderID: providerID, AuthType: store.AuthAPI, Status: store.ConnConnected,
			APIKeyCiphertext: seal(secrets.ConnectionContext(u.ID, providerID, secrets.FieldAPIKey), key)}
		if providerID == "custom" {
			conn.BaseURL, conn.ModelIDs = r.up.URL+"/v1", "m"
		}
		if err := r.st.CreateConnection(ctx, conn); err != nil {
			t.Fatal(err)
		}
	}
	p := &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: providerID, ModelID: "m"}
	if _, _, err := r.st.CreateProject(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	token, err := r.st.IssueGatewayToken(ctx, p.ID, conn.ID)
	if err != nil {
		t.Fatal(err)
	}
	return p, token
}

func (r *rig) post(t *testing.T, path, header, token, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if header == "Authorization" {
		token = "Bearer " + token
	}
	req.Header.Set(header, token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// usage waits for the gateway to record what it forwarded and sums it for the user.
func (r *rig) usage(t *testing.T, userID string) []store.UsageRow {
	r.gw.Wait()
	day := time.Now().UTC().Format(time.DateOnly)
	rows, err := r.st.Usage(context.Background(), store.UsageQuery{UserID: userID, From: day, To: day, GroupBy: store.GroupProject})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestForwardsWithTheKeyAndRecordsUsage(t *testing.T) {
	r := newRig(t)
	p, token := r.project(t, "ann", "custom", "sk-real")

	status, body := r.post(t, "/p/custom/chat/completions", "Authorization", token, `{"model":"m","stream":true,"messages":[]}`)
	if status != 200 || !strings.Contains(body, `"content":"hi"`) {
		t.Fatalf("%d %s", status, body)
	}
	req, sent := r.up.last()
	if req.URL.Path != "/v1/chat/completions" || req.Header.Get("Authorization") != "Bearer sk-real" {
		t.Fatalf("upstream got %s with Authorization %q", req.URL.Path, req.Header.Get("Authorization"))
	}
	if !strings.Contains(sent, `"include_usage":true`) {
		t.Fatalf("the stream did not ask for usage: %s", sent)
	}
	rows := r.usage(t, p.OwnerUserID)
	if len(rows) != 1 || rows[0].InputTokens != 10 || rows[0].OutputTokens != 5 || rows[0].Requests != 1 {
		t.Fatalf("usage %+v", rows)
	}

	// Not streamed: cached input is counted apart from the rest.
	if status, body := r.post(t, "/p/custom/chat/completions", "Authorization", token, `{"model":"m"}`); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	rows = r.usage(t, p.OwnerUserID)
	if rows[0].InputTokens != 10+600 || rows[0].CacheTokens != 400 || rows[0].OutputTokens != 205 || rows[0].Requests != 2 {
		t.Fatalf("usage %+v", rows)
	}
}

func TestAnthropicGetsItsOwnHeader(t *testing.T) {
	r := newRig(t)
	_, token := r.project(t, "ann", "anthropic", "sk-ant-real")
	if status, body := r.post(t, "/p/anthropic/messages", "x-api-key", token, `{"model":"m"}`); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	req, _ := r.up.last()
	if req.URL.Path != "/v1/messages" || req.Header.Get("x-api-key") != "sk-ant-real" || req.Header.Get("Authorization") != "" {
		t.Fatalf("upstream got %s, x-api-key %q, Authorization %q", req.URL.Path, req.Header.Get("x-api-key"), req.Header.Get("Authorization"))
	}
}

// A token reaches its own project's connection and nothing else: not another provider's path,
// not another project's or user's connection, and not once revoked.
func TestTokensAreIsolated(t *testing.T) {
	r := newRig(t)
	a, tokenA := r.project(t, "ann", "custom", "sk-ann")
	_, tokenB := r.project(t, "bob", "openrouter", "sk-or-bob")

	// A's token on B's provider path is refused before anything goes upstream.
	status, body := r.post(t, "/p/openrouter/chat/completions", "Authorization", tokenA, `{"model":"m"}`)
	if status != http.StatusForbidden || !strings.Contains(body, `"error"`) {
		t.Fatalf("A's token on openrouter: %d %s", status, body)
	}
	// B's token on its own path carries B's key, never A's.
	if status, _ := r.post(t, "/p/openrouter/chat/completions", "Authorization", tokenB, `{"model":"m"}`); status != 200 {
		t.Fatalf("B's own request: %d", status)
	}
	req, _ := r.up.last()
	if req.Header.Get("Authorization") != "Bearer sk-or-bob" {
		t.Fatalf("B's request carried %q", req.Header.Get("Authorization"))
	}
	n := len(r.up.got)
	for _, tc := range []struct{ name, token string }{
		{"no token", ""}, {"a made-up token", store.GatewayTokenPrefix + "nope"}, {"a provider key", "sk-ann"},
	} {
		if status, _ := r.post(t, "/p/custom/chat/completions", "Authorization", tc.token, `{}`); status != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", tc.name, status)
		}
	}
	// Deleting A's project revokes its token.
	if err := r.st.MarkProjectDeleting(context.Background(), a.ID); err != nil {
		t.Fatal(err)
	}
	if status, _ := r.post(t, "/p/custom/chat/completions", "Authorization", tokenA, `{}`); status != http.StatusUnauthorized {
		t.Errorf("the token of a deleted project: %d, want 401", status)
	}
	if len(r.up.got) != n {
		t.Fatalf("%d refused requests reached the provider", len(r.up.got)-n)
	}
}

// A key sealed for another row (copied in the database) is refused for good, with the reason,
// and nothing goes upstream.
func TestCopiedKeyIsRefused(t *testing.T) {
	r := newRig(t)
	ann, _ := r.project(t, "ann", "custom", "sk-ann")
	bob, token := r.project(t, "bob", "custom", "sk-bob")
	ctx := context.Background()
	annConn, err := r.st.Connection(ctx, ann.OwnerUserID, "custom")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.DB.NewUpdate().Model((*store.ProviderConnection)(nil)).Set("api_key_ciphertext = ?", annConn.APIKeyCiphertext).
		Where("user_id = ?", bob.OwnerUserID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	status, body := r.post(t, "/p/custom/chat/completions", "Authorization", token, `{"model":"m"}`)
	if status != http.StatusUnauthorized || !strings.Contains(body, "cannot be decrypted") || strings.Contains(body, "sk-ann") {
		t.Fatalf("%d %s", status, body)
	}
	if len(r.up.got) != 0 {
		t.Fatalf("%d requests reached the provider", len(r.up.got))
	}
}

func TestBudgetRefusesInTheProvidersShape(t *testing.T) {
	r := newRig(t)
	p, token := r.project(t, "ann", "anthropic", "sk-ant-real")
	ctx := context.Background()
	// Spent $1 this month; the admin's budget for the user is $1.
	if err := r.st.RecordUsage(ctx, &store.UsageRecord{UserID: p.OwnerUserID, ProjectID: p.ID, ProviderID: "anthropic", ModelID: "m",
		CreatedAt: time.Now(), CostNanos: 1e9, Status: 200}); err != nil {
		t.Fatal(err)
	}
	one := int64(1e9)
	if err := r.st.SetBudget(ctx, store.BudgetUser, p.OwnerUserID, &one); err != nil {
		t.Fatal(err)
	}
	n := len(r.up.got)
	status, body := r.post(t, "/p/anthropic/messages", "x-api-key", token, `{"model":"m"}`)
	if status != http.StatusPaymentRequired || !strings.Contains(body, `"type":"error"`) || !strings.Contains(body, "monthly budget of $1 is reached") {
		t.Fatalf("%d %s", status, body)
	}
	if len(r.up.got) != n {
		t.Fatal("a request over the budget reached the provider")
	}
	two := int64(2e9)
	if err := r.st.SetBudget(ctx, store.BudgetUser, p.OwnerUserID, &two); err != nil {
		t.Fatal(err)
	}
	if status, body := r.post(t, "/p/anthropic/messages", "x-api-key", token, `{"model":"m"}`); status != 200 {
		t.Fatalf("after raising the budget: %d %s", status, body)
	}
}

func TestDollars(t *testing.T) {
	for nanos, want := range map[int64]string{20e9: "$20", 5e8: "$0.50", 1_200_000: "$0.0012", 12_345_678_901: "$12.35"} {
		if got := Dollars(nanos); got != want {
			t.Errorf("Dollars(%d) = %q, want %q", nanos, got, want)
		}
	}
}

// countingCipher counts the keys Vault would open.
type countingCipher struct {
	plainCipher
	mu sync.Mutex
	n  int
}

func (c *countingCipher) Decrypt(ctx context.Context, ciphertext, keyContext string) ([]byte, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.plainCipher.Decrypt(ctx, ciphertext, keyContext)
}

// A key is opened once for a run of requests, and again as soon as the stored key changes.
func TestKeyOpenedOncePerCiphertext(t *testing.T) {
	r := newRig(t)
	vault := &countingCipher{}
	r.gw.Secrets = vault
	p, token := r.project(t, "ann", "custom", "sk-first")
	for range 3 {
		if status, body := r.post(t, "/p/custom/chat/completions", "Authorization", token, `{"model":"m"}`); status != 200 {
			t.Fatalf("%d %s", status, body)
		}
	}
	if vault.n != 1 {
		t.Fatalf("3 requests opened the key %d times, want once", vault.n)
	}
	ctx := context.Background()
	conn, err := r.st.Connection(ctx, p.OwnerUserID, "custom")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.DB.NewUpdate().Model((*store.ProviderConnection)(nil)).
		Set("api_key_ciphertext = ?", seal(secrets.ConnectionContext(p.OwnerUserID, "custom", secrets.FieldAPIKey), "sk-second")).
		Where("id = ?", conn.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if status, body := r.post(t, "/p/custom/chat/completions", "Authorization", token, `{"model":"m"}`); status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	if req, _ := r.up.last(); req.Header.Get("Authorization") != "Bearer sk-second" || vault.n != 2 {
		t.Fatalf("after the key changed: upstream got %q, %d opens", req.Header.Get("Authorization"), vault.n)
	}
}
