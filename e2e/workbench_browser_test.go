package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// TestBrowserWorkbench: on the project page the Review tab shows the file the agent wrote with
// its diff; "Undo from here" rolls it back (the file leaves the workspace, the turn the
// conversation, the dock says so and the composer holds the prompt again); Restore brings it
// all back; the Terminal tab runs a shell that echoes what is typed.
func TestBrowserWorkbench(t *testing.T) {
	key := "sk-workbench-key-2468"
	ctx, doce, llm := chatBrowser(t, "wbpage", key)
	const prompt = "Write the page file, please."
	llm.script("Write the page file", mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{
		"command": "printf 'written for the page\\n' > page.txt", "description": "write page.txt"}}}},
		mockReply{Chunks: []string{"Page file ", "written."}})
	createProjectInPage(t, ctx, doce, prompt)
	run(t, ctx, "the answer shows", assistantSays("Page file written."))
	var loc string
	run(t, ctx, "where the page is", chromedp.Location(&loc))
	projectID := loc[strings.LastIndex(loc, "/")+1:]
	if i := strings.IndexByte(projectID, '?'); i >= 0 {
		projectID = projectID[:i]
	}
	if !inWorkspace(projectID, "page.txt") {
		t.Fatal("the agent did not write page.txt")
	}

	run(t, ctx, "review the change",
		chromedp.Click(`#tab-review`),
		chromedp.WaitVisible(`#review-files button[data-path="page.txt"]`),
		chromedp.Click(`#review-files button[data-path="page.txt"]`),
		chromedp.WaitVisible(`//pre[@id="review-patch"]/span[contains(@class, "add") and contains(., "+written for the page")]`),
	)
	screenshot(t, ctx, "30-workbench-review")

	run(t, ctx, "undo from the user message",
		chromedp.Click(`//li[contains(@class, "user") and .//div[contains(., "Write the page file")]]//button[contains(@class, "undo")]`),
		chromedp.WaitVisible(`//div[@id="revert-dock"]//strong[contains(., "rolled back")]`),
	)
	waitFor(t, "page.txt to leave the workspace", 10*time.Second, func() (bool, error) { return !inWorkspace(projectID, "page.txt"), nil })
	var composer string
	run(t, ctx, "the composer holds the undone prompt", chromedp.Value(`#message`, &composer))
	if composer != prompt {
		t.Errorf("composer = %q, want the undone prompt %q", composer, prompt)
	}
	if n := count(t, ctx, `li.msg.user`); n != 0 {
		t.Errorf("%d user messages still show after undoing the first", n)
	}
	var warning string
	run(t, ctx, "read the dock", chromedp.Text(`#revert-dock`, &warning))
	if !strings.Contains(warning, "overwriting edits") {
		t.Errorf("the dock does not warn that Restore overwrites later edits: %q", warning)
	}
	screenshot(t, ctx, "31-workbench-undone")

	run(t, ctx, "restore",
		chromedp.Click(`#restore`),
		chromedp.WaitNotVisible(`#revert-dock`),
		assistantSays("Page file written."),
	)
	waitFor(t, "page.txt to come back", 10*time.Second, func() (bool, error) { return inWorkspace(projectID, "page.txt"), nil })
	run(t, ctx, "read the composer", chromedp.Value(`#message`, &composer))
	if composer != "" {
		t.Errorf("after restore the composer still holds %q", composer)
	}

	// The page opens a terminal, connected through doce's WebSocket relay, and runs what is
	// typed. The text goes in as the browser's input event and Enter as a bare key press: a
	// synthetic key event with text reaches xterm.js twice (as keydown and as keypress), where
	// a real keyboard's reaches it once.
	run(t, ctx, "open a terminal", chromedp.Click(`#tab-terminal`), chromedp.WaitVisible(`#term-tabs button[aria-selected="true"]`))
	run(t, ctx, "the terminal connects", chromedp.WaitVisible(`.term-screen[data-connected] .xterm-screen`))
	run(t, ctx, "the shell's prompt shows", chromedp.WaitVisible(`//div[contains(@class, "xterm-rows") and contains(., "$")]`))
	run(t, ctx, "type in the terminal",
		chromedp.Focus(`.term-screen .xterm-helper-textarea`, chromedp.NodeReady),
		chromedp.ActionFunc(func(ctx context.Context) error {
			if err := input.InsertText("echo typed-$((20+3))[$OPENCODE_SERVER_PASSWORD]").Do(ctx); err != nil {
				return err
			}
			for _, typ := range []input.KeyType{input.KeyRawDown, input.KeyUp} {
				if err := input.DispatchKeyEvent(typ).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).Do(ctx); err != nil {
					return err
				}
			}
			return nil
		}),
	)
	// The emulator shows spaces as no-break spaces: the marker has none.
	var rows string
	waitFor(t, "the typed command's output in the terminal", 30*time.Second, func() (bool, error) {
		run(t, ctx, "read the terminal", chromedp.Text(`.term-screen .xterm-rows`, &rows, chromedp.NodeReady))
		return strings.Contains(rows, "typed-23[]"), fmt.Errorf("the terminal shows %q", rows)
	})
	screenshot(t, ctx, "32-workbench-terminal")

	// Nothing secret reached the page: not the key, not the workspace's password.
	secret := workspaceSecret(t, projectID)
	var html string
	run(t, ctx, "read the page", chromedp.OuterHTML(`html`, &html))
	if strings.Contains(html, secret) || strings.Contains(html, key) {
		t.Error("the page carries the workspace's password or the provider key")
	}
}
