package activities

import (
	"context"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// A rewrap after a key rotation moves every ciphertext of both tables to the newest version,
// page by page, leaving the plaintext and the rows already on it as they were; then none is
// stale and the older versions can be retired.
func TestRewrapMovesEveryCiphertextToTheNewestVersion(t *testing.T) {
	ctx := context.Background()
	st, cipher := openStore(t), newFakeCipher()
	u := &store.User{Username: "owner", PasswordHash: "h", Role: store.RoleUser}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	type field struct{ provider, name, plaintext string }
	var fields []field
	conn := func(provider string, c *store.ProviderConnection, secretsOf map[string]string) {
		t.Helper()
		c.UserID, c.ProviderID, c.KeyVersion = u.ID, provider, cipher.latest
		for name, pt := range secretsOf {
			ct := cipher.seal(secrets.ConnectionContext(u.ID, provider, name), pt)
			switch name {
			case secrets.FieldAPIKey:
				c.APIKeyCiphertext = ct
			case secrets.FieldOAuthAccess:
				c.OAuthAccessCiphertext = ct
			case secrets.FieldOAuthRefresh:
				c.OAuthRefreshCiphertext = ct
			}
			fields = append(fields, field{provider, name, pt})
		}
		if err := st.CreateConnection(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	project := func(password string) *store.Project {
		t.Helper()
		p := &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "gpt-5"}
		if _, _, err := st.CreateProject(ctx, p, nil); err != nil {
			t.Fatal(err)
		}
		if password != "" {
			if _, err := st.SetProjectPasswordOnce(ctx, p.ID, cipher.seal(secrets.ProjectContext(p.ID, agent.FieldServerPassword), password)); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	conn("openai", &store.ProviderConnection{AuthType: store.AuthAPI}, map[string]string{secrets.FieldAPIKey: "sk-openai"})
	conn("github-copilot", &store.ProviderConnection{AuthType: store.AuthOAuth},
		map[string]string{secrets.FieldOAuthAccess: "gho-access", secrets.FieldOAuthRefresh: "gho-refresh"})
	conn("openrouter", &store.ProviderConnection{AuthType: store.AuthAPI}, map[string]string{secrets.FieldAPIKey: "sk-or-1"})
	p1 := project("password-1")
	project("") // never started: no password
	const pooled = "pooled-workspace"
	if err := st.AddPoolWorkspace(ctx, pooled, "doce/workspace:test", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetPoolPasswordOnce(ctx, pooled, cipher.seal(secrets.ProjectContext(pooled, agent.FieldServerPassword), "pool-password")); err != nil {
		t.Fatal(err)
	}
	forge := &store.ForgeConnection{ID: store.NewID(), UserID: u.ID, Kind: "gitea", BaseURL: "https://git.example.com", AccountLogin: "ada"}
	forge.TokenCiphertext = cipher.seal(secrets.ForgeContext(u.ID, forge.ID), "forge-token")
	if err := st.CreateForgeConnection(ctx, forge); err != nil {
		t.Fatal(err)
	}
	cipher.latest = 2 // the key rotated
	conn("anthropic", &store.ProviderConnection{AuthType: store.AuthAPI}, map[string]string{secrets.FieldAPIKey: "sk-ant"})
	p3 := project("password-3")

	rw := &Rewrap{Store: st, Secrets: cipher}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(rw)
	countStale := func() workflows.StaleResult {
		t.Helper()
		v, err := env.ExecuteActivity(rw.CountStale, 2)
		if err != nil {
			t.Fatal(err)
		}
		var out workflows.StaleResult
		if err := v.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := countStale(); got != (workflows.StaleResult{Latest: 2, Stale: 7}) {
		t.Fatalf("before: %+v, want 7 stale (4 connection fields, a project's and a pooled workspace's password, a forge token)", got)
	}

	page := func(table, after string, size int) workflows.RewrapPageResult {
		t.Helper()
		v, err := env.ExecuteActivity(rw.RewrapPage, workflows.RewrapPageInput{Table: table, AfterID: after, PageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		var out workflows.RewrapPageResult
		if err := v.Get(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	var conns []workflows.RewrapPageResult
	for after := ""; ; {
		res := page(workflows.TableConnections, after, 2)
		conns = append(conns, res)
		if res.Seen < 2 {
			break
		}
		after = res.LastID
	}
	// openai + github-copilot (3 fields), then openrouter (1) and anthropic (none), then none.
	if len(conns) != 3 || conns[0].Seen != 2 || conns[0].Rewrapped != 3 || conns[1].Seen != 2 || conns[1].Rewrapped != 1 ||
		conns[2].Seen != 0 || conns[2].Rewrapped != 0 || conns[2].LastID != conns[1].LastID {
		t.Fatalf("connection pages %+v", conns)
	}
	if res := page(workflows.TableProjects, "", 10); res.Seen != 3 || res.Rewrapped != 1 || res.LastID != p3.ID {
		t.Fatalf("project page %+v, want 3 seen, 1 rewrapped, last %s", res, p3.ID)
	}

	for _, f := range fields {
		c, err := st.Connection(ctx, u.ID, f.provider)
		if err != nil {
			t.Fatal(err)
		}
		ct := map[string]string{secrets.FieldAPIKey: c.APIKeyCiphertext, secrets.FieldOAuthAccess: c.OAuthAccessCiphertext,
			secrets.FieldOAuthRefresh: c.OAuthRefreshCiphertext}[f.name]
		pt, err := cipher.Decrypt(ctx, ct, secrets.ConnectionContext(u.ID, f.provider, f.name))
		if secrets.KeyVersion(ct) != 2 || c.KeyVersion != 2 || err != nil || string(pt) != f.plaintext {
			t.Errorf("%s %s: %q (row version %d) opens to %q, %v", f.provider, f.name, ct, c.KeyVersion, pt, err)
		}
	}
	got, err := st.Project(ctx, p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cipher.Decrypt(ctx, got.ServerPasswordCiphertext, secrets.ProjectContext(p1.ID, agent.FieldServerPassword)); secrets.KeyVersion(got.ServerPasswordCiphertext) != 2 || err != nil || string(pt) != "password-1" {
		t.Errorf("project password %q opens to %q, %v", got.ServerPasswordCiphertext, pt, err)
	}
	if res := page(workflows.TablePool, "", 10); res.Seen != 1 || res.Rewrapped != 1 {
		t.Fatalf("pool page %+v, want 1 seen, 1 rewrapped", res)
	}
	w, err := st.PoolWorkspace(ctx, pooled)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cipher.Decrypt(ctx, w.ServerPasswordCiphertext, secrets.ProjectContext(pooled, agent.FieldServerPassword)); secrets.KeyVersion(w.ServerPasswordCiphertext) != 2 || err != nil || string(pt) != "pool-password" {
		t.Errorf("pooled workspace password %q opens to %q, %v", w.ServerPasswordCiphertext, pt, err)
	}
	if res := page(workflows.TableForges, "", 10); res.Seen != 1 || res.Rewrapped != 1 {
		t.Fatalf("forge page %+v, want 1 seen, 1 rewrapped", res)
	}
	f, err := st.ForgeConnection(ctx, u.ID, forge.ID)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := cipher.Decrypt(ctx, f.TokenCiphertext, secrets.ForgeContext(u.ID, forge.ID)); secrets.KeyVersion(f.TokenCiphertext) != 2 || f.KeyVersion != 2 || err != nil || string(pt) != "forge-token" {
		t.Errorf("forge token %q (row version %d) opens to %q, %v", f.TokenCiphertext, f.KeyVersion, pt, err)
	}
	if got := countStale(); got.Stale != 0 {
		t.Fatalf("after: %d stale", got.Stale)
	}
	if _, err := env.ExecuteActivity(rw.RetireOldVersions, 2); err != nil {
		t.Fatal(err)
	}
	if cipher.minVersion != 2 {
		t.Errorf("minimum decryption version %d, want 2", cipher.minVersion)
	}
}
