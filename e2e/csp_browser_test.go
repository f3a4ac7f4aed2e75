package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/docker/docker/api/types/image"
)

// scriptRan waits (up to 10 s: deferred scripts run after the page is shown) until doce's site
// script (static/project.js) has run on the page, which it tells by the listeners the script
// puts on the document (the DevTools console API lists them); false when it never does.
func scriptRan(t *testing.T, ctx context.Context) bool {
	t.Helper()
	for range 50 {
		var ok bool
		run(t, ctx, "look for the site script's listeners",
			chromedp.Evaluate(`(() => { const l = getEventListeners(document); return !!(l.click && l.submit && l.focusin); })()`, &ok,
				func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithIncludeCommandLineAPI(true) }))
		if ok {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// TestBrowserPagesUnderCSP visits every page of doce in Chromium under its
// Content-Security-Policy: each renders, its script runs (confirmations ask, the connect form
// shows one way of connecting, a new token selects itself), and the browser reports no
// violation (newBrowser fails the test on any). A script injected into a page is refused and
// reported, so the check can see what it looks for. The workspace image is missing, so the
// project stops at its first step without starting a container.
func TestBrowserPagesUnderCSP(t *testing.T) {
	stack := requireStack(t)
	missing := fmt.Sprintf("doce/opencode-e2e-missing:%d", time.Now().UnixNano())
	doce := startDoce(t, stack, fmt.Sprintf("e2e-csp-%d", time.Now().UnixNano()), "DOCE_OPENCODE_IMAGE="+missing)
	t.Cleanup(func() { dockerClient(t).ImageRemove(context.Background(), missing, image.RemoveOptions{}) })
	ctx := newBrowser(t, 1280, 900)
	log := violationsOf(ctx)

	visit := func(path, ready string) {
		t.Helper()
		run(t, ctx, "open "+path, chromedp.Navigate(doce.URL+path), chromedp.WaitVisible(ready))
		if !scriptRan(t, ctx) {
			t.Errorf("%s: the site script did not run", path)
		}
	}
	visit("/", `#username`)
	run(t, ctx, "first-run setup",
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)

	// Providers: the script shows the chosen provider's fields only.
	visit("/settings/providers", `#providerId`)
	run(t, ctx, "connect the custom provider",
		selectProvider("custom"),
		chromedp.WaitVisible(`#baseURL`),
		chromedp.WaitNotVisible(`#wellKnownUrl`),
		chromedp.SendKeys(`#apiKey`, "sk-csp-test"),
		chromedp.SendKeys(`#baseURL`, "http://host.docker.internal:9/v1"),
		chromedp.SendKeys(`#models`, "mock-model"),
		chromedp.Click(`//button[normalize-space()="Connect"]`),
		chromedp.WaitVisible(`//td[contains(., "Custom (OpenAI-compatible)")]`),
	)

	visit("/settings/forges", `#kind`)

	// A project: the page follows its setup over server-sent events (connect-src 'self') until
	// the step fails for want of the image, and Delete asks first.
	visit("/projects", `#prompt`)
	run(t, ctx, "create a project",
		chromedp.SendKeys(`#prompt`, "A page under a strict policy."),
		chromedp.Submit(`#prompt`),
		chromedp.WaitVisible(`#live`),
	)
	if !scriptRan(t, ctx) {
		t.Error("the project page's script did not run")
	}
	run(t, ctx, "the setup fails live", chromedp.WaitVisible(`//button[normalize-space()="Retry setup"]`))
	screenshot(t, ctx, "30-csp-project")

	// Account: a new token selects itself when focused; Revoke asks first.
	visit("/account", `#name`)
	var selected bool
	run(t, ctx, "make a token and focus it",
		chromedp.SendKeys(`#name`, "csp"),
		chromedp.Click(`//button[normalize-space()="Create token"]`),
		chromedp.WaitVisible(`#new-token`),
		chromedp.Focus(`#new-token`),
		chromedp.Evaluate(`(() => { const e = document.getElementById("new-token"); return e.value.length > 0 && e.selectionStart === 0 && e.selectionEnd === e.value.length; })()`, &selected),
	)
	if !selected {
		t.Error("the new token is not selected when focused")
	}
	before := log.dialogs.Load()
	run(t, ctx, "revoke the token",
		chromedp.Click(`//button[normalize-space()="Revoke"]`),
		chromedp.WaitVisible(`//p[normalize-space()="The token was revoked."]`),
	)
	if log.dialogs.Load() == before {
		t.Error("Revoke did not ask for confirmation")
	}

	visit("/admin/users", `#username`)
	visit("/ops", `main h1`)
	visit("/no/such/page", `main [role="alert"]`)

	// Signed out: the login page.
	run(t, ctx, "sign out", chromedp.Click(`//button[starts-with(normalize-space(), "Sign out")]`), chromedp.WaitVisible(`#username`))
	visit("/login", `#username`)

	// The control: an inline script added to the page is refused and reported.
	if got := log.take(); len(got) > 0 {
		t.Fatalf("violations on doce's pages:\n%s", strings.Join(got, "\n"))
	}
	var ran bool
	run(t, ctx, "inject an inline script",
		chromedp.Evaluate(`(() => { const s = document.createElement("script"); s.textContent = "window.injected = true"; document.body.appendChild(s); return window.injected === true; })()`, &ran))
	waitFor(t, "the injected script's violation", 10*time.Second, func() (bool, error) {
		got := log.take()
		return len(got) > 0 && strings.Contains(got[0], "script-src"), fmt.Errorf("reported %q", got)
	})
	if ran {
		t.Error("an inline script ran on a doce page")
	}

	// The headers themselves, as any client sees them.
	resp, err := http.Get(doce.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("/login headers: %v", resp.Header)
	}
}
