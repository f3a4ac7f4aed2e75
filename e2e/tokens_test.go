package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/doce-dev/doce/store"
)

// TestAPITokenScript is what a script or CI job does with personal access tokens against a real
// doce: list projects, create one with a read-write token and follow it to ready with a
// read-only one, which may not create; a revoked token and an expired one get 401.
func TestAPITokenScript(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-tokens-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-tokens-e2e")

	// Tokens are made by a signed-in person.
	mint := func(name, scope string) (string, string) {
		t.Helper()
		status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/account/tokens", map[string]any{"name": name, "scope": scope, "expiresInDays": 1})
		var v struct {
			Token    string
			APIToken struct{ ID string }
		}
		if json.Unmarshal(body, &v); status != http.StatusCreated || v.Token == "" {
			t.Fatalf("create %s token: %d %s", scope, status, body)
		}
		return v.Token, v.APIToken.ID
	}
	rw, rwID := mint("deploy script", "write")
	ro, _ := mint("dashboard", "read")

	// The script: a plain client, no cookies, the token in a header.
	script := &http.Client{Timeout: 30 * time.Second}
	call := func(token, method, path string, in any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if in != nil {
			b, _ := json.Marshal(in)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, doce.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := script.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	status, body := call(ro, "GET", "/api/v1/projects", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"projects":[]`) {
		t.Fatalf("list with the read-only token: %d %s", status, body)
	}
	status, body = call(rw, "POST", "/api/v1/projects", map[string]any{"prompt": "Say hello.", "name": "From CI", "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create with the read-write token: %d %s", status, body)
	}
	var created struct{ Project projectState }
	json.Unmarshal(body, &created)
	status, body = call(ro, "POST", "/api/v1/projects", map[string]any{"prompt": "Say hello again.", "modelId": "mock-model"})
	expectError(t, status, body, http.StatusForbidden, "read-only")
	waitFor(t, "project ready, watched with the read-only token", 3*time.Minute, func() (bool, error) {
		status, body := call(ro, "GET", "/api/v1/projects/"+created.Project.ID, nil)
		var v struct{ Project projectState }
		json.Unmarshal(body, &v)
		return status == http.StatusOK && v.Project.Status == "ready", fmt.Errorf("%d %s %s", status, v.Project.Status, v.Project.SetupError)
	})
	status, body = call(ro, "GET", "/api/v1/projects", nil)
	if status != http.StatusOK || !strings.Contains(string(body), created.Project.ID) {
		t.Fatalf("list after create: %d %s", status, body)
	}

	// Revoked: 401 at once.
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/account/tokens/"+rwID, nil); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	status, body = call(rw, "GET", "/api/v1/projects", nil)
	expectError(t, status, body, http.StatusUnauthorized, "revoked or expired")

	// Expired: the shortest a token can be asked to live is a day, so its expiry is moved into
	// the past in the database the running doce reads.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB.NewUpdate().Model((*store.APIToken)(nil)).Set("expires_at = ?", time.Now().UTC().Add(-time.Second)).
		Where("name = ?", "dashboard").Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, body = call(ro, "GET", "/api/v1/projects", nil)
	expectError(t, status, body, http.StatusUnauthorized, "revoked or expired")

	// The audit log has each token's first use, not one line per request; the list shows the
	// expired one as expired and never a secret.
	_, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/audit", nil)
	if n := strings.Count(string(body), `"action":"api_token.use"`); n != 2 {
		t.Errorf("%d api_token.use audit events, want 2 (one per token): %s", n, body)
	}
	_, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/account/tokens", nil)
	if !strings.Contains(string(body), `"expired":true`) || strings.Contains(string(body), ro) {
		t.Errorf("token list: %s", body)
	}
	if logs := doce.Logs.String(); strings.Contains(logs, rw) || strings.Contains(logs, ro) {
		t.Error("a token is in doce's logs")
	}
}

// TestBrowserAPIToken makes a token on the account page in Chromium: it is shown once, works as
// a bearer token, is listed by its prefix only afterwards, and Revoke (confirmed) ends it.
func TestBrowserAPIToken(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-browser-tokens-%d", time.Now().UnixNano()))
	ctx := newBrowser(t, 1280, 900)
	// Revoke asks for confirmation: accept it.
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true))
		}
	})
	var token string
	run(t, ctx, "first run, then make a token",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
		chromedp.Navigate(doce.URL+"/account"),
		chromedp.WaitVisible(`#name`),
		chromedp.SendKeys(`#name`, "nightly report"),
		chromedp.SetValue(`#scope`, "read"),
		chromedp.SetValue(`#expiresInDays`, "7"),
		chromedp.Click(`//button[normalize-space()="Create token"]`),
		chromedp.WaitVisible(`#new-token`),
		chromedp.Value(`#new-token`, &token),
	)
	screenshot(t, ctx, "20-account-token-created")
	if !strings.HasPrefix(token, store.APITokenPrefix) {
		t.Fatalf("the page shows %q as the new token", token)
	}
	req, _ := http.NewRequest(http.MethodGet, doce.URL+"/api/v1/projects", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the token from the page: %d", resp.StatusCode)
	}

	var html string
	run(t, ctx, "the account page again",
		chromedp.Navigate(doce.URL+"/account"),
		chromedp.WaitVisible(`//td[normalize-space()="nightly report"]`),
		chromedp.OuterHTML(`main`, &html),
	)
	screenshot(t, ctx, "21-account-tokens")
	var scrollWidth int
	run(t, ctx, "the account page on a phone",
		chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile),
		chromedp.Navigate(doce.URL+"/account"),
		chromedp.WaitVisible(`#name`),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
	)
	screenshot(t, ctx, "narrow-account")
	if scrollWidth > 375 {
		t.Errorf("/account is %d px wide at a 375 px viewport", scrollWidth)
	}
	if strings.Contains(html, token) || !strings.Contains(html, token[:len(store.APITokenPrefix)+4]+"…") || !strings.Contains(html, "read-only") {
		t.Error("the account page shows the token again, or not its prefix and scope")
	}
	run(t, ctx, "revoke it",
		chromedp.Click(`//button[normalize-space()="Revoke"]`),
		chromedp.WaitVisible(`//p[normalize-space()="The token was revoked."]`),
	)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the revoked token: %d, want 401", resp.StatusCode)
	}
}
