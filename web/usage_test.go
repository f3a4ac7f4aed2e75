package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
)

// Users see their own usage, summed as asked; bad queries get a 400 naming the field; a
// project's budget is at most its owner's and the project shows where it stands.
func TestUsageAndBudgets(t *testing.T) {
	e := newEnv(t)
	alice, bob := e.user(t, "alice"), e.user(t, "bob")
	ctx := context.Background()
	a, _ := e.store.UserByUsername(ctx, "alice")
	b, _ := e.store.UserByUsername(ctx, "bob")
	p := &store.Project{OwnerUserID: a.ID, Name: "Plan", Slug: "plan", Prompt: "x", ProviderID: "openrouter", ModelID: "m"}
	if _, _, err := e.store.CreateProject(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*store.UsageRecord{
		{UserID: a.ID, ProjectID: p.ID, ProviderID: "openrouter", ModelID: "m", InputTokens: 10, OutputTokens: 5, CacheTokens: 2, CostNanos: 3e8},
		{UserID: a.ID, ProjectID: p.ID, ProviderID: "openrouter", ModelID: "m", InputTokens: 20, OutputTokens: 7, CostNanos: 5e8},
		{UserID: b.ID, ProjectID: "other", ProviderID: "custom", ModelID: "x", InputTokens: 999, CostNanos: 9e9},
	} {
		u.CreatedAt, u.Status = time.Now(), 200
		if err := e.store.RecordUsage(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	api := e.srv.URL + "/api/v1"
	resp, body := do(t, alice, "GET", api+"/usage?groupBy=project", "", nil)
	var got struct{ Rows []map[string]any }
	json.Unmarshal([]byte(body), &got)
	if resp.StatusCode != http.StatusOK || len(got.Rows) != 1 {
		t.Fatalf("usage: %d %s", resp.StatusCode, body)
	}
	r := got.Rows[0]
	if r["projectId"] != p.ID || r["inputTokens"] != 30.0 || r["outputTokens"] != 7.0+5 || r["cacheTokens"] != 2.0 || r["cost"] != 0.8 || r["requests"] != 2.0 {
		t.Fatalf("row %v", r)
	}
	for _, q := range []string{"groupBy=user", "groupBy=nope", "from=yesterday", "from=2026-12-10&to=2026-12-01", "from=2020-01-01&to=2026-01-01"} {
		resp, body := do(t, alice, "GET", api+"/usage?"+q, "", nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `"field"`) {
			t.Errorf("usage?%s: %d %s, want 400 naming the field", q, resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, alice, "GET", api+"/admin/usage", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("admin usage for a user: %d, want 403", resp.StatusCode)
	}

	// An admin gives alice $1 a month; her project may have less, not more.
	one := int64(1e9)
	if err := e.store.SetBudget(ctx, store.BudgetUser, a.ID, &one); err != nil {
		t.Fatal(err)
	}
	if resp, body := do(t, alice, "PUT", api+"/projects/"+p.ID+"/budget", "", map[string]any{"monthlyUsd": 5}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "$1 a month") {
		t.Errorf("a project budget over the user's: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, alice, "PUT", api+"/projects/"+p.ID+"/budget", "", map[string]any{"monthlyUsd": -1}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a negative budget: %d %s", resp.StatusCode, body)
	}
	// $0.80 of $1 spent: a warning; with a $0.50 project budget: reached.
	resp, body = do(t, alice, "GET", api+"/projects/"+p.ID+"/budget", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"state":"warning"`) {
		t.Fatalf("budget: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, alice, "PUT", api+"/projects/"+p.ID+"/budget", "", map[string]any{"monthlyUsd": 0.5})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"state":"reached"`) || !strings.Contains(body, `"projectMonthlyUsd":0.5`) {
		t.Fatalf("set budget: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, bob, "PUT", api+"/projects/"+p.ID+"/budget", "", map[string]any{"monthlyUsd": 100}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("bob setting alice's project budget: %d, want 404", resp.StatusCode)
	}
	resp, _ = alice.Get(e.srv.URL + "/projects/" + p.ID)
	if page := read(t, resp); !strings.Contains(page, "reached") {
		t.Error("the project page does not show the budget reached")
	}
	resp, _ = alice.Get(e.srv.URL + "/usage")
	if page := read(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(page, "<rect") || !strings.Contains(page, "openrouter/m") || strings.Contains(page, "custom/x") {
		t.Errorf("usage page: %d, chart or alice's model missing, or bob's shown", resp.StatusCode)
	}
}
