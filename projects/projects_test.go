package projects

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/workflows"
)

// fixture is a Service on a real database and a mock Temporal that records the setups started.
type fixture struct {
	svc     *Service
	st      *store.Store
	user    *store.User
	started []string // workflow ids of setups started
}

func newFixture(t *testing.T, q Quotas) *fixture {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLite)
	f := &fixture{st: st, user: &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}}
	if err := st.CreateUser(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	tc := &mocks.Client{}
	tc.On("ExecuteWorkflow", mock.Anything, mock.Anything, workflows.TypeProjectSetup, mock.Anything).
		Return(func(_ context.Context, o client.StartWorkflowOptions, _ any, _ ...any) (client.WorkflowRun, error) {
			f.started = append(f.started, o.ID)
			run := &mocks.WorkflowRun{}
			run.On("GetID").Return(o.ID)
			return run, nil
		}).Maybe()
	f.svc = &Service{Store: st, Setups: &setups.Service{Temporal: tc, Store: st, TaskQueue: "doce"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Quotas: q}
	return f
}

func (f *fixture) connect(t *testing.T, conn store.ProviderConnection) {
	t.Helper()
	conn.UserID, conn.AuthType, conn.APIKeyCiphertext = f.user.ID, store.AuthAPI, "vault:v1:x"
	if err := f.st.CreateConnection(context.Background(), &conn); err != nil {
		t.Fatal(err)
	}
}

// refused asserts err is the httperr a person is shown, with status, code and field.
func refused(t *testing.T, err error, status int, code, field string) *httperr.Error {
	t.Helper()
	var e *httperr.Error
	if !errors.As(err, &e) || e.Status != status || e.Code != code || e.Field != field {
		t.Fatalf("got %v (%+v), want %d %s on %q", err, e, status, code, field)
	}
	return e
}

// Create refuses bad input with a message on its field before it stores anything or asks
// Temporal.
func TestCreateRefusesBadInput(t *testing.T) {
	f := newFixture(t, Quotas{})
	ctx := context.Background()
	_, _, err := f.svc.Create(ctx, f.user, CreateInput{Prompt: "Build a shop"})
	refused(t, err, http.StatusConflict, "no_provider", "providerId")

	f.connect(t, store.ProviderConnection{ProviderID: "custom", BaseURL: "http://llm.test/v1", ModelIDs: "m1,m2"})
	for _, tc := range []struct {
		in    CreateInput
		field string
	}{
		{CreateInput{}, "prompt"},
		{CreateInput{Prompt: strings.Repeat("x", MaxPromptLen+1)}, "prompt"},
		{CreateInput{Prompt: "p", Name: strings.Repeat("n", 101)}, "name"},
		{CreateInput{Prompt: "p", Name: "a\x07b"}, "name"},
		{CreateInput{Prompt: "p", RequestID: "a\x00"}, "requestId"},
		{CreateInput{Prompt: "p", RequestID: strings.Repeat("r", 101)}, "requestId"},
		{CreateInput{Prompt: "p", ProviderID: "openai"}, "providerId"},
		{CreateInput{Prompt: "p", ModelID: "m3"}, "modelId"},
		{CreateInput{RepositoryURL: "file:///etc"}, "repositoryUrl"},
	} {
		if _, _, err := f.svc.Create(ctx, f.user, tc.in); err == nil {
			t.Errorf("%+v was accepted", tc.in)
		} else {
			refused(t, err, http.StatusBadRequest, "invalid", tc.field)
		}
	}
	if ps, _ := f.st.ProjectsByOwner(ctx, f.user.ID); len(ps) != 0 || len(f.started) != 0 {
		t.Fatalf("refused creates left %d projects and %d setups", len(ps), len(f.started))
	}
}

// Create stores the project under the preferred provider and its first model, starts its setup,
// and gives a repeated request the same project without starting another.
func TestCreateStartsSetupOnceAndIsIdempotent(t *testing.T) {
	f := newFixture(t, Quotas{})
	ctx := context.Background()
	f.connect(t, store.ProviderConnection{ProviderID: "custom", BaseURL: "http://llm.test/v1", ModelIDs: "m1,m2"})
	in := CreateInput{Prompt: "  Build a little shop for my bakery  ", RequestID: "req-1"}
	p, created, err := f.svc.Create(ctx, f.user, in)
	if err != nil || !created {
		t.Fatalf("create: %v, created %v", err, created)
	}
	if p.Name != "Build a little shop for my bakery" || p.Slug != "build-a-little-shop-for-my-bakery" ||
		p.ProviderID != "custom" || p.ModelID != "m1" || p.Status != status.SettingUp || p.WorkflowID != workflows.SetupWorkflowID(p.ID) {
		t.Fatalf("project %+v", p)
	}
	again, created, err := f.svc.Create(ctx, f.user, in)
	if err != nil || created || again.ID != p.ID {
		t.Fatalf("repeat: %v, created %v, %s want %s", err, created, again.ID, p.ID)
	}
	if len(f.started) != 1 {
		t.Fatalf("%d setups started, want 1", len(f.started))
	}
}

// Quotas: the number of projects is refused with 403, the pace of making them with 429 and how
// long to wait; a repeated request still gets its project back.
func TestCreateHoldsToQuotas(t *testing.T) {
	f := newFixture(t, Quotas{Projects: 1})
	ctx := context.Background()
	f.connect(t, store.ProviderConnection{ProviderID: "custom", BaseURL: "http://llm.test/v1", ModelIDs: "m1"})
	first := CreateInput{Prompt: "one", RequestID: "r1"}
	if _, _, err := f.svc.Create(ctx, f.user, first); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.Create(ctx, f.user, CreateInput{Prompt: "two", RequestID: "r2"})
	refused(t, err, http.StatusForbidden, "quota_projects", "")
	if _, created, err := f.svc.Create(ctx, f.user, first); err != nil || created {
		t.Fatalf("a repeat past the quota: %v, created %v", err, created)
	}

	f.svc.Quotas = Quotas{CreatePerHour: 1}
	_, _, err = f.svc.Create(ctx, f.user, CreateInput{Prompt: "three"})
	e := refused(t, err, http.StatusTooManyRequests, "quota_rate", "")
	if e.RetryAfter < 59*time.Minute || e.RetryAfter > time.Hour {
		t.Fatalf("RetryAfter %s, want about an hour", e.RetryAfter)
	}
	if err := f.svc.CheckStart(ctx, f.user.ID); err != nil {
		t.Fatalf("no running quota, yet: %v", err)
	}
	f.svc.Quotas = Quotas{Running: 1}
	refused(t, f.svc.CheckStart(ctx, f.user.ID), http.StatusForbidden, "quota_running", "")
}

// Progress reads a finished setup's table from the database and never asks Temporal for it.
func TestProgressOfAFinishedSetup(t *testing.T) {
	f := newFixture(t, Quotas{})
	ctx := context.Background()
	if pr := f.svc.Progress(ctx, &store.Project{ID: "p", Status: status.Pending}); pr != nil {
		t.Fatalf("a setup not started has progress %+v", pr)
	}
	pr := f.svc.Progress(ctx, &store.Project{ID: "p", WorkflowID: "w", Status: status.Ready})
	if pr == nil || len(pr.Steps) == 0 {
		t.Fatalf("a ready project without a recorded table: %+v, want the completed table", pr)
	}
}

// A project's name comes from its prompt when it has none, and its slug from its name.
func TestNamesAndSlugs(t *testing.T) {
	for _, tc := range []struct {
		fn       func(string) string
		in, want string
	}{
		{slugify, "My Shop!", "my-shop"},
		{slugify, "  --Ünïcode café-- ", "n-code-caf"},
		{slugify, "???", "project"},
		{slugify, strings.Repeat("ab ", 30), "ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-a"}, // cut at 40 bytes
		{slugify, strings.Repeat("abc ", 20), strings.Repeat("abc-", 9) + "abc"},         // no dash left at the cut
		{nameFromPrompt, "Build a todo app\nwith tags", "Build a todo app with tags"},
		{nameFromPrompt, "   ", "Untitled project"},
		{nameFromPrompt, strings.Repeat("word ", 20), strings.TrimSpace(strings.Repeat("word ", 10))},
	} {
		if got := tc.fn(tc.in); got != tc.want {
			t.Errorf("%q became %q, want %q", tc.in, got, tc.want)
		}
	}
}
