package activities

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// An attempt that recorded its request and died before recording OpenCode's answer left a
// session in OpenCode: the re-run adopts it rather than opening a second.
func TestSessionCreateAdoptsTheSessionOfAnInterruptedAttempt(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if err := r.st.MarkSessionRequested(r.ctx, p.ID, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	r.oc.sessions = []opencode.Session{{ID: "ses_interrupted", Title: p.Name}}

	v, err := r.env.ExecuteActivity(r.acts.SessionCreate, workflows.StepInput{ProjectID: p.ID})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.SessionResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.SessionID != "ses_interrupted" {
		t.Errorf("session %q, want the one OpenCode already holds", res.SessionID)
	}
	if n := r.oc.count("POST /session"); n != 0 {
		t.Errorf("POST /session made %d times, want none", n)
	}
	if got := r.reload(t, p.ID).OpenCodeSessionID; got != "ses_interrupted" {
		t.Errorf("recorded session %q", got)
	}
}

// A first attempt records that it asks before it asks (so a re-run knows to look), and a run
// after the answer was recorded asks nothing.
func TestSessionCreateRecordsTheRequestBeforeCreating(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	recordedFirst := false
	r.oc.beforeCreateSession = func() { recordedFirst = r.reload(t, p.ID).SessionRequestedAt != nil }

	for run := 1; run <= 2; run++ {
		v, err := r.env.ExecuteActivity(r.acts.SessionCreate, workflows.StepInput{ProjectID: p.ID})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		var res workflows.SessionResult
		if err := v.Get(&res); err != nil || res.SessionID != "ses_1" {
			t.Fatalf("run %d: session %q, %v; want ses_1", run, res.SessionID, err)
		}
	}
	if !recordedFirst {
		t.Error("the session was asked for before the request was recorded")
	}
	if n := r.oc.count("POST /session"); n != 1 {
		t.Errorf("POST /session made %d times, want 1", n)
	}
	if n := r.oc.count("GET /session"); n != 0 {
		t.Errorf("a fresh run listed sessions %d times; it has nothing to adopt", n)
	}
	if got := r.reload(t, p.ID); got.OpenCodeSessionID != "ses_1" || got.SessionRequestedAt == nil {
		t.Errorf("recorded session %q, requested at %v", got.OpenCodeSessionID, got.SessionRequestedAt)
	}
}

// A re-run after an attempt that recorded the prompt's request sends it only when the session
// holds no user message; a fresh run records the request before sending.
func TestSendInitialPromptIsNeverSentTwice(t *testing.T) {
	for _, tc := range []struct {
		name          string
		requested     bool // an earlier attempt recorded the request
		alreadyInside bool // and OpenCode got it
		wantPrompts   int
	}{
		{"re-run after OpenCode took it", true, true, 0},
		{"re-run after it was lost", true, false, 1},
		{"first run", false, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.project(t, "openai", "gpt-5")
			if err := r.st.RecordSession(r.ctx, p.ID, "ses_1"); err != nil {
				t.Fatal(err)
			}
			r.oc.sessions = []opencode.Session{{ID: "ses_1"}}
			if tc.requested {
				if err := r.st.MarkPromptRequested(r.ctx, p.ID, time.Now().UTC()); err != nil {
					t.Fatal(err)
				}
			}
			if tc.alreadyInside {
				r.oc.messages["ses_1"] = []opencode.Message{{Info: opencode.MessageInfo{ID: "msg_1", SessionID: "ses_1", Role: "user"}}}
			}
			recordedFirst := false
			r.oc.beforePrompt = func() { recordedFirst = r.reload(t, p.ID).PromptRequestedAt != nil }

			if _, err := r.env.ExecuteActivity(r.acts.SendInitialPrompt, workflows.StepInput{ProjectID: p.ID}); err != nil {
				t.Fatal(err)
			}
			if n := r.oc.count("POST /session/{id}/prompt_async"); n != tc.wantPrompts {
				t.Fatalf("prompt sent %d times, want %d", n, tc.wantPrompts)
			}
			if tc.wantPrompts == 1 {
				got := r.oc.prompts[0]
				if len(got.Parts) != 1 || got.Parts[0].Text != p.Prompt || got.Model != (opencode.Model{ProviderID: "openai", ModelID: "gpt-5"}) {
					t.Errorf("sent %+v", got)
				}
				if !recordedFirst {
					t.Error("the prompt was sent before its request was recorded")
				}
			}
			if !tc.requested && r.oc.count("GET /session/{id}/message") != 0 {
				t.Error("a first run looked for a prompt no attempt can have sent")
			}
			if r.reload(t, p.ID).PromptSentAt == nil {
				t.Error("the prompt is not marked sent")
			}
			// Marked sent: another run asks OpenCode nothing.
			before := r.oc.count("GET /session/{id}/message") + r.oc.count("POST /session/{id}/prompt_async")
			if _, err := r.env.ExecuteActivity(r.acts.SendInitialPrompt, workflows.StepInput{ProjectID: p.ID}); err != nil {
				t.Fatal(err)
			}
			if after := r.oc.count("GET /session/{id}/message") + r.oc.count("POST /session/{id}/prompt_async"); after != before {
				t.Errorf("a run after the prompt was marked sent made %d requests", after-before)
			}
		})
	}
}

// A project made from a repository without a prompt has no first message to send.
func TestSendInitialPromptWithoutAPrompt(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	if _, err := r.st.DB.NewUpdate().Model((*store.Project)(nil)).Set("prompt = ''").Where("id = ?", p.ID).Exec(r.ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.st.RecordSession(r.ctx, p.ID, "ses_1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.env.ExecuteActivity(r.acts.SendInitialPrompt, workflows.StepInput{ProjectID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if n := r.oc.count("POST /session/{id}/prompt_async") + r.oc.count("GET /session/{id}/message"); n != 0 {
		t.Errorf("%d requests to OpenCode for no prompt", n)
	}
}

// A refresh that stores a new token while the old one is being handed over (and pushes the new
// one to running projects before this PUT lands) would leave OpenCode with the old: the token
// is read again after the PUT and handed over again when it changed, so the last PUT is the
// newest token.
func TestSetProviderCredentialsHandsOverATokenRefreshedMeanwhile(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	r.oauthConnection(t, "access-1", "refresh-1")
	r.oc.beforeAuth = func(n int) {
		if n == 1 {
			r.refreshStored(t, "access-2", "refresh-2")
		}
	}

	if _, err := r.env.ExecuteActivity(r.acts.SetProviderCredentials, workflows.StepInput{ProjectID: p.ID}); err != nil {
		t.Fatal(err)
	}
	if n := r.oc.count("PUT /auth/{id}"); n != 2 {
		t.Fatalf("PUT /auth made %d times, want 2", n)
	}
	first, last := r.oc.auths[0], r.oc.auths[1]
	if first.Access != "access-1" || last.Access != "access-2" || last.Refresh != "refresh-2" || last.Type != store.AuthOAuth {
		t.Errorf("handed over %q then %q (refresh %q); want the refreshed pair last", first.Access, last.Access, last.Refresh)
	}
	if c, _ := r.st.Connection(r.ctx, r.user.ID, "openai"); c.LastUsedAt == nil {
		t.Error("the connection's use is not recorded")
	}
}

// A token that keeps changing is handed over three times at most; the attempt then fails, for
// a retry to start afresh.
func TestSetProviderCredentialsGivesUpOnATokenThatKeepsChanging(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	r.oauthConnection(t, "access-0", "refresh-0")
	r.oc.beforeAuth = func(n int) {
		r.refreshStored(t, "access-"+strconv.Itoa(n), "refresh-"+strconv.Itoa(n))
	}

	_, err := r.env.ExecuteActivity(r.acts.SetProviderCredentials, workflows.StepInput{ProjectID: p.ID})
	if err == nil || !strings.Contains(err.Error(), "changed three times") {
		t.Fatalf("err %v, want the token changed three times", err)
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		t.Errorf("a moving token ended the step non-retryable: %v", err)
	}
	if n := r.oc.count("PUT /auth/{id}"); n != 3 {
		t.Errorf("PUT /auth made %d times, want 3", n)
	}
}

// An API key never reaches the workspace: OpenCode gets a gateway token, which the gateway
// maps to the project and the owner's connection; the next hand-over replaces it.
func TestSetProviderCredentialsHandsOverAGatewayToken(t *testing.T) {
	r := newRig(t)
	p := r.project(t, "openai", "gpt-5")
	conn := &store.ProviderConnection{UserID: r.user.ID, ProviderID: "openai", AuthType: store.AuthAPI,
		APIKeyCiphertext: r.connField("openai", secrets.FieldAPIKey, "sk-the-key")}
	if err := r.st.CreateConnection(r.ctx, conn); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := r.env.ExecuteActivity(r.acts.SetProviderCredentials, workflows.StepInput{ProjectID: p.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.oc.auths) != 2 {
		t.Fatalf("handed over %d times, want 2", len(r.oc.auths))
	}
	first, second := r.oc.auths[0].Key, r.oc.auths[1].Key
	for _, k := range []string{first, second} {
		if !strings.HasPrefix(k, store.GatewayTokenPrefix) || strings.Contains(k, "sk-the-key") {
			t.Fatalf("OpenCode got %q, want a gateway token", k)
		}
	}
	if _, err := r.st.GatewayGrant(r.ctx, first); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced token still allows something: %v", err)
	}
	g, err := r.st.GatewayGrant(r.ctx, second)
	if err != nil || g.Project.ID != p.ID || g.Connection.ID != conn.ID {
		t.Fatalf("grant of the new token: %+v, %v", g, err)
	}
}

// A credential Vault will not decrypt for its row will not decrypt on a retry either: the step
// ends at once, non-retryable, with a reason the owner can act on, and OpenCode is handed
// nothing.
func TestSetProviderCredentialsEndsOnAnUndecryptableCredential(t *testing.T) {
	for _, tc := range []struct {
		name, provider, model string
		conn                  func(r *rig) *store.ProviderConnection
		wantReason            string
	}{
		{"oauth sign-in", "openai", "gpt-5", func(r *rig) *store.ProviderConnection {
			return &store.ProviderConnection{UserID: r.user.ID, ProviderID: "openai", AuthType: store.AuthOAuth,
				OAuthAccessCiphertext: r.connField("openai", secrets.FieldOAuthRefresh, "access-in-the-wrong-field")}
		}, "The stored openai sign-in cannot be decrypted"},
		{"well-known token", providers.WellKnownID, "acme/model", func(r *rig) *store.ProviderConnection {
			return &store.ProviderConnection{UserID: r.user.ID, ProviderID: providers.WellKnownID, AuthType: store.AuthWellKnown,
				WellKnownURL: "https://ai.example.test", WellKnownEnv: "ACME_TOKEN",
				WellKnownCiphertext: r.connField("openai", secrets.FieldWellKnown, "token-of-another-provider")}
		}, "The stored well-known token cannot be decrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			p := r.project(t, tc.provider, tc.model)
			if err := r.st.CreateConnection(r.ctx, tc.conn(r)); err != nil {
				t.Fatal(err)
			}

			_, err := r.env.ExecuteActivity(r.acts.SetProviderCredentials, workflows.StepInput{ProjectID: p.ID})
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || appErr.Type() != workflows.ErrTypeCredentialsRejected || !appErr.NonRetryable() {
				t.Fatalf("err %v, want a non-retryable %s", err, workflows.ErrTypeCredentialsRejected)
			}
			if !strings.HasPrefix(appErr.Message(), tc.wantReason) {
				t.Errorf("reason %q, want it to start %q", appErr.Message(), tc.wantReason)
			}
			if r.cipher.refused == 0 {
				t.Error("the cipher refused nothing: the test did not reach the decrypt")
			}
			if n := r.oc.count("PUT /auth/{id}"); n != 0 {
				t.Errorf("PUT /auth made %d times, want none", n)
			}
		})
	}
}
