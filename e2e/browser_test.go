package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Browser tests drive Debian's Chromium, headless, through the pages as a person would, and
// save screenshots of the main pages under test-output/screenshots.

// extra options are added to the defaults.
func newBrowser(t *testing.T, width, height int, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("chromium is not installed (scripts/tools.sh installs it)")
		}
		t.Skip("needs chromium: run `make test`")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
		// This machine reaches no other host: keep Chromium from trying.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Confirm dialogs ("Delete this project?") are accepted, as a person clicking OK would.
	// Every browser test fails on a Content-Security-Policy violation: each page must work under
	// doce's policy, and a refused script or style would leave it half working.
	v := &violationLog{}
	ctx = context.WithValue(ctx, violationKey{}, v)
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			v.dialogs.Add(1)
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true))
		case *cdplog.EventEntryAdded:
			if strings.Contains(ev.Entry.Text, "Content Security Policy") {
				v.add(ev.Entry.URL + ": " + ev.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			if d := ev.ExceptionDetails; d != nil {
				msg := d.Text
				if d.Exception != nil && d.Exception.Description != "" {
					msg = d.Exception.Description
				}
				v.scriptError(fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, msg))
			}
		}
	})
	t.Cleanup(func() {
		if got := v.take(); len(got) > 0 {
			t.Errorf("%d Content-Security-Policy violations:\n%s", len(got), strings.Join(got, "\n"))
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// violationLog collects what a browser reported as refused by the Content-Security-Policy, and
// counts the dialogs it opened.
type violationLog struct {
	mu      sync.Mutex
	list    []string
	dialogs atomic.Int32
	// scriptErrors are the page scripts' uncaught exceptions, said when a step fails.
	scriptErrors []string
}

func (v *violationLog) scriptError(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.scriptErrors = append(v.scriptErrors, s)
}

func (v *violationLog) scriptErrorsSoFar() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.scriptErrors)
}

// violationKey carries a newBrowser context's log, so contexts derived from it (a step's
// timeout) find it too.
type violationKey struct{}

func (v *violationLog) add(s string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.list = append(v.list, s)
}

// take returns the violations reported so far and forgets them.
func (v *violationLog) take() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	l := v.list
	v.list = nil
	return l
}

func violationsOf(ctx context.Context) *violationLog {
	v, _ := ctx.Value(violationKey{}).(*violationLog)
	return v
}

// run runs browser actions, bounded in time, failing the test with what was being done.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		// Say where the browser was and what it showed.
		var loc, text, statuses string
		c, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		chromedp.Run(c, chromedp.Location(&loc), chromedp.Evaluate(`document.body ? document.body.innerText.slice(0, 600) : ''`, &text),
			chromedp.Evaluate(`Array.from(document.querySelectorAll('[role=status], [role=alert]')).filter(e => e.innerText.trim()).map(e => (e.id || e.className) + ': ' + e.innerText.trim()).join(' | ')`, &statuses))
		var scriptErrors []string
		if v := violationsOf(ctx); v != nil {
			scriptErrors = v.scriptErrorsSoFar()
		}
		t.Fatalf("%s: %v (at %s, showing %q; status lines: %q; script errors: %q)", what, err, loc, text, statuses, scriptErrors)
	}
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var buf []byte
	run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(&buf, 100)) // quality 100 makes a PNG
	dir := filepath.Join("..", "test-output", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserFlow: first run → connect a provider → create a project → watch the steps reach
// done live → a failed setup, Retry, watch it complete → disconnect → delete.
func TestBrowserFlow(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-browser-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	ctx := newBrowser(t, 1280, 900)
	downWorkspacesAtEnd(t, doce)

	var loc string
	run(t, ctx, "first-run setup",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.Location(&loc),
	)
	if !strings.HasSuffix(loc, "/setup") {
		t.Fatalf("first visit went to %s, want /setup", loc)
	}
	screenshot(t, ctx, "01-setup")
	run(t, ctx, "create the admin",
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)

	key := "sk-browser-key-1234"
	run(t, ctx, "connect the custom provider",
		selectProvider("custom"),
		chromedp.SendKeys(`#apiKey`, key),
		chromedp.SendKeys(`#baseURL`, "http://host.docker.internal:"+llm.port()+"/v1"),
		chromedp.SendKeys(`#models`, "mock-model"),
		chromedp.Click(`//button[normalize-space()="Connect"]`),
		chromedp.WaitVisible(`//td[contains(., "Custom (OpenAI-compatible)")]`),
	)
	screenshot(t, ctx, "02-providers")
	var html string
	run(t, ctx, "read the providers page", chromedp.OuterHTML(`main`, &html))
	if strings.Contains(html, key) || !strings.Contains(html, "…1234") {
		t.Fatal("the providers page shows the key, or not its hint")
	}

	run(t, ctx, "create a project",
		chromedp.Navigate(doce.URL+"/projects"),
		chromedp.WaitVisible(`#prompt`),
		chromedp.SendKeys(`#prompt`, "Build a browser-tested page."),
		chromedp.Submit(`#prompt`),
		chromedp.WaitVisible(`#live`),
	)
	screenshot(t, ctx, "03-project-setting-up")
	// The page follows the setup live (server-sent events), without reloading.
	run(t, ctx, "watch the setup complete", chromedp.WaitVisible(`#live [data-status="ready"]`))
	var done int
	run(t, ctx, "count done steps", chromedp.Evaluate(`document.querySelectorAll('#live li.done').length`, &done))
	if done != 5 {
		t.Fatalf("%d steps shown done, want 5", done)
	}
	screenshot(t, ctx, "04-project-ready")

	// A setup that fails: OpenCode refuses PUT /auth until the fault is removed.
	proxy.fail("PUT", "/auth/", 500)
	run(t, ctx, "create a project that fails",
		chromedp.Navigate(doce.URL+"/projects"),
		chromedp.WaitVisible(`#prompt`),
		chromedp.SendKeys(`#prompt`, "This one fails first."),
		chromedp.Submit(`#prompt`),
		chromedp.WaitVisible(`//button[normalize-space()="Retry setup"]`),
	)
	run(t, ctx, "read the failure", chromedp.OuterHTML(`#live`, &html))
	if !strings.Contains(html, "HTTP 500") || !strings.Contains(html, "opencode.setProviderCredentials") {
		t.Fatalf("the failure is not explained:\n%s", html)
	}
	screenshot(t, ctx, "05-project-failed")
	proxy.clear()
	run(t, ctx, "retry and watch it complete",
		clickButton("Retry setup"),
		chromedp.WaitVisible(`#live [data-status="ready"]`),
	)

	run(t, ctx, "delete the project",
		clickButton("Delete project"),
		chromedp.WaitVisible(`#prompt`),
		chromedp.Location(&loc),
	)
	if !strings.HasSuffix(loc, "/projects") {
		t.Fatalf("after delete at %s, want /projects", loc)
	}

	run(t, ctx, "disconnect the provider",
		chromedp.Navigate(doce.URL+"/settings/providers"),
		chromedp.Click(`//button[normalize-space()="Disconnect"]`),
		chromedp.WaitVisible(`#providerId`),
	)
	waitFor(t, "the provider disappears", time.Minute, func() (bool, error) {
		var text string
		err := chromedp.Run(ctx, chromedp.Navigate(doce.URL+"/settings/providers"), chromedp.Text(`main`, &text))
		return strings.Contains(text, "No provider connected yet"), err
	})
	screenshot(t, ctx, "06-disconnected")
}

// TestBrowserNarrowAndKeyboard checks the pages at 375 px wide, and the add-provider form with
// the keyboard alone.
func TestBrowserNarrowAndKeyboard(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-narrow-%d", time.Now().UnixNano()))
	ctx := newBrowser(t, 1280, 900)
	// Headless windows are at least 500 px wide: emulate a phone's viewport instead.
	run(t, ctx, "emulate a 375 px phone", chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile))
	run(t, ctx, "first run at 375 px",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)
	for _, path := range []string{"/settings/providers", "/projects"} {
		var scrollWidth int
		var wide []string
		run(t, ctx, "open "+path,
			chromedp.Navigate(doce.URL+path),
			chromedp.WaitVisible(`main`),
			chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
			// The innermost elements reaching past the viewport, to say what is too wide.
			chromedp.Evaluate(`[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 376 && ![...e.children].some(c => c.getBoundingClientRect().right > 376)).slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right) + 'px: ' + e.textContent.trim().slice(0, 40))`, &wide),
		)
		if scrollWidth > 375 {
			t.Errorf("%s is %d px wide at a 375 px viewport: %q", path, scrollWidth, wide)
		}
		screenshot(t, ctx, "narrow"+strings.ReplaceAll(path, "/", "-"))
	}

	// Pick the custom provider with the keyboard; the form shows its fields. Then tab from
	// the top of the page: the fields take focus in order, each visibly.
	run(t, ctx, "pick the custom provider",
		chromedp.Navigate(doce.URL+"/settings/providers"),
		chromedp.WaitVisible(`#providerId`),
		chromedp.Focus(`#providerId`),
		selectProvider("custom"),
		chromedp.WaitVisible(`#baseURL`),
		chromedp.WaitNotVisible(`#wellKnownUrl`),
		chromedp.Focus(`nav .brand`), // start from the top of the page
	)
	want := []string{"providerId", "apiKey", "baseURL", "models"}
	var got []string
	for i := 0; i < 40 && len(got) < len(want); i++ {
		var id, outline string
		run(t, ctx, "tab", chromedp.KeyEvent("\t"),
			chromedp.Evaluate(`document.activeElement.id`, &id),
			chromedp.Evaluate(`getComputedStyle(document.activeElement).outlineStyle`, &outline))
		if id != "" && strings.Contains(strings.Join(want, " "), id) {
			if outline == "none" {
				t.Errorf("#%s has focus but no visible outline", id)
			}
			got = append(got, id)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("keyboard focus order %v, want %v", got, want)
	}
	// Submit the form from the keyboard (Enter in a field): an empty key is refused, with a
	// message saying what to do.
	run(t, ctx, "submit from the keyboard",
		chromedp.Focus(`#baseURL`),
		chromedp.KeyEvent("http://127.0.0.1:9/v1"),
		chromedp.Focus(`#models`),
		chromedp.KeyEvent("m1"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`[role="alert"]`),
	)
	var alert, fieldMsg string
	run(t, ctx, "read the error",
		chromedp.Text(`[role="alert"]`, &alert),
		chromedp.Text(`#apiKey-error`, &fieldMsg))
	if !strings.Contains(alert, "Enter the API key") || !strings.Contains(fieldMsg, "Enter the API key") {
		t.Errorf("keyboard submit: alert %q, message by the field %q", alert, fieldMsg)
	}
}

// clickButton clicks the button labelled text once there is one. The project page's live
// section is rendered again at each event: finding the button and clicking it in one script
// cannot click a node just replaced, as a separate find and click can.
func clickButton(text string) chromedp.Action {
	return chromedp.Poll(fmt.Sprintf(`(() => {
		const b = [...document.querySelectorAll("button")].find(b => b.textContent.trim() === %q);
		if (b) b.click();
		return !!b;
	})()`, text), nil)
}

// selectProvider picks a provider in the connect form as a person would, so the form shows
// that provider's fields.
func selectProvider(id string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.SetValue(`#providerId`, id),
		chromedp.Evaluate(`document.getElementById("providerId").dispatchEvent(new Event("change")), true`, nil),
	}
}

// TestBrowserOAuthSignIn signs in to ChatGPT as a person would: the button on the providers
// page, the code shown by doce typed into the provider's page in a second tab, and doce's
// page moving on to "signed in" by itself.
func TestBrowserOAuthSignIn(t *testing.T) {
	stack := requireStack(t)
	srv := startAuthServer(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-browser-oauth-%d", time.Now().UnixNano()), oauthEnv(srv.URL())...)
	ctx := newBrowser(t, 1280, 900)

	run(t, ctx, "first-run setup",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)
	var code, link string
	var ok bool
	run(t, ctx, "start the ChatGPT sign-in",
		chromedp.Click(`//button[normalize-space()="Log in with ChatGPT"]`),
		chromedp.WaitVisible(`[data-user-code]`),
		chromedp.Text(`[data-user-code]`, &code),
		chromedp.AttributeValue(`#login a[target="_blank"]`, "href", &link, &ok),
	)
	if code == "" || !ok || !strings.HasPrefix(link, srv.URL()) {
		t.Fatalf("sign-in page: code %q, link %q", code, link)
	}
	screenshot(t, ctx, "10-oauth-code")

	// The user opens the provider's page in another tab and enters the code.
	provider, cancel := chromedp.NewContext(ctx)
	defer cancel()
	run(t, provider, "approve at the provider",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#user_code`),
		chromedp.SendKeys(`#user_code`, code),
		chromedp.Click(`#approve`),
		chromedp.WaitVisible(`#message`),
	)
	var signedIn string
	run(t, ctx, "doce's page follows the sign-in",
		chromedp.WaitVisible(`//p[contains(., "You are signed in")]`),
		chromedp.Text(`#login`, &signedIn),
	)
	screenshot(t, ctx, "11-oauth-connected")
	var html string
	run(t, ctx, "the connection is listed",
		chromedp.Navigate(doce.URL+"/settings/providers"),
		chromedp.WaitVisible(`//td[contains(., "OpenAI")]`),
		chromedp.OuterHTML(`main`, &html),
	)
	if !strings.Contains(html, "signed in, account") || !strings.Contains(html, "doce renews it before then") {
		t.Errorf("the providers page does not show the sign-in and its expiry")
	}
	screenshot(t, ctx, "12-oauth-providers")
}

// TestBrowserLockouts: wrong passwords lock an account; the administrator sees it on Users and
// clears it with the page's button.
func TestBrowserLockouts(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-lockouts-%d", time.Now().UnixNano()))
	ctx := newBrowser(t, 1280, 900)
	run(t, ctx, "first run",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)
	var last int
	for range 6 {
		resp, err := newClient(t).PostForm(doce.URL+"/login", url.Values{"username": {"Mallory"}, "password": {"guess guess"}})
		if err != nil {
			t.Fatal(err)
		}
		last = resp.StatusCode
		resp.Body.Close()
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("sixth wrong password: %d, want 429", last)
	}
	var html string
	run(t, ctx, "open Users",
		chromedp.Navigate(doce.URL+"/admin/users"),
		chromedp.WaitVisible(`//td[normalize-space()="mallory@127.0.0.1"]`),
		chromedp.OuterHTML(`main`, &html),
	)
	screenshot(t, ctx, "12-users-lockouts")
	if !strings.Contains(html, "Failed sign-ins") || !strings.Contains(html, "Clear") {
		t.Fatalf("users page without the lockout: %.500s", html)
	}
	run(t, ctx, "clear the lockout",
		chromedp.Click(`//tr[td[normalize-space()="mallory@127.0.0.1"]]//button[normalize-space()="Clear"]`),
		chromedp.WaitNotPresent(`//td[normalize-space()="mallory@127.0.0.1"]`),
	)
}
