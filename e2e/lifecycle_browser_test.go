package e2e

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// TestBrowserStopAndStart uses the project page's buttons: Stop on a ready project, the page
// turning to stopped by itself, Start, and the page turning to ready again.
func TestBrowserStopAndStart(t *testing.T) {
	stack := requireStack(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-browser-lifecycle-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-e2e-browser-lifecycle")
	p := createProject(t, hc, doce, "stop me from the page")
	waitStatus(t, hc, doce, p.ID, "ready", 5*time.Minute)

	ctx := newBrowser(t, 1280, 900)
	u, _ := url.Parse(doce.URL)
	var session string
	for _, c := range hc.Jar.Cookies(u) {
		if c.Name == "doce_session" {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie")
	}
	stopButton := `//button[normalize-space()="Stop workspace"]`
	startButton := `//button[normalize-space()="Start workspace"]`
	run(t, ctx, "open the ready project",
		network.SetCookie("doce_session", session).WithDomain(u.Hostname()).WithPath("/").WithHTTPOnly(true),
		chromedp.Navigate(doce.URL+"/projects/"+p.ID),
		chromedp.WaitVisible(stopButton),
	)
	screenshot(t, ctx, "lifecycle-01-ready")
	run(t, ctx, "stop it", chromedp.Click(stopButton), chromedp.WaitVisible(startButton))
	screenshot(t, ctx, "lifecycle-02-stopped")
	if got := getProject(t, hc, doce, p.ID); got.Status != "stopped" {
		t.Fatalf("the page offers Start while the project is %s", got.Status)
	}
	run(t, ctx, "start it", chromedp.Click(startButton), chromedp.WaitVisible(`[data-status="starting"], [data-status="ready"]`, chromedp.ByQuery))
	screenshot(t, ctx, "lifecycle-03-starting")
	run(t, ctx, "ready again", chromedp.WaitVisible(stopButton))
	if got := getProject(t, hc, doce, p.ID); got.Status != "ready" {
		t.Fatalf("the page offers Stop while the project is %s", got.Status)
	}
}
