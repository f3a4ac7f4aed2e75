package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The project page as the place to work with the agent, in real Chromium against the real
// stack: only the LLM is the test's mock.

// chatBrowser signs in a new admin in a fresh doce and connects the custom provider served by
// the mock LLM, with key.
func chatBrowser(t *testing.T, name, key string, env ...string) (context.Context, *doceProcess, *mockLLM) {
	t.Helper()
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-%s-%d", name, time.Now().UnixNano()), env...)
	downWorkspacesAtEnd(t, doce)
	ctx := newBrowser(t, 1280, 900)
	run(t, ctx, "first-run setup",
		chromedp.Navigate(doce.URL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#providerId`),
	)
	run(t, ctx, "connect the mock LLM as the custom provider",
		selectProvider("custom"),
		chromedp.SendKeys(`#apiKey`, key),
		chromedp.SendKeys(`#baseURL`, "http://host.docker.internal:"+llm.port()+"/v1"),
		chromedp.SendKeys(`#models`, "mock-model"),
		chromedp.Click(`//button[normalize-space()="Connect"]`),
		chromedp.WaitVisible(`//td[contains(., "Custom (OpenAI-compatible)")]`),
	)
	return ctx, doce, llm
}

// createProjectInPage creates a project from prompt on the projects page and waits for its page to
// show the conversation, ready for the next message.
func createProjectInPage(t *testing.T, ctx context.Context, doce *doceProcess, prompt string) {
	t.Helper()
	run(t, ctx, "create a project",
		chromedp.Navigate(doce.URL+"/projects"),
		chromedp.WaitVisible(`#prompt`),
		chromedp.SendKeys(`#prompt`, prompt),
		chromedp.Submit(`#prompt`),
		chromedp.WaitVisible(`#live`),
	)
	// A setup takes seconds alone, minutes on a machine busy with other workspaces.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := chromedp.Run(wctx, chromedp.WaitVisible(`#live [data-status="ready"]`), chromedp.WaitVisible(`#composer`)); err != nil {
		var status string
		_ = chromedp.Run(ctx, chromedp.Text(`#agent-status`, &status, chromedp.ByQuery))
		screenshot(t, ctx, "20-conversation-not-ready")
		t.Fatalf("the conversation opens once the setup is ready: %v (the page says %q)", err, status)
	}
}

// assistantSays waits for an answer of the agent holding text.
func assistantSays(text string) chromedp.Action {
	return chromedp.WaitVisible(fmt.Sprintf(`//li[contains(@class, "assistant")]//div[contains(@class, "text") and contains(., %q)]`, text))
}

// sendMessage types text into the message box and sends it with Enter, as a person would.
func sendMessage(text string) chromedp.Action {
	return chromedp.Tasks{
		chromedp.Focus(`#message`),
		chromedp.SendKeys(`#message`, text),
		chromedp.KeyEvent("\r"),
	}
}

func count(t *testing.T, ctx context.Context, selector string) int {
	t.Helper()
	var n int
	run(t, ctx, "count "+selector, chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, selector), &n))
	return n
}

// latencyObserver records, in the page, when each streamed token w000; w001; ... first shows
// in the conversation: performance.timeOrigin + performance.now() is the wall clock in ms, the
// same clock the mock LLM stamps its sends with (one machine).
const latencyObserver = `(function () {
  window.__seen = [];
  var conv = document.getElementById("conversation"), next = 0;
  new MutationObserver(function () {
    var now = performance.timeOrigin + performance.now(), text = conv.textContent;
    while (text.indexOf("w" + String(next).padStart(3, "0") + ";") >= 0) { window.__seen[next++] = now; }
  }).observe(conv, { childList: true, subtree: true, characterData: true });
  return true;
})()`

func percentileOf(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// TestBrowserConversation is the seed's first test through the page: connect a provider,
// create a project, the page shows the agent's answer to the first prompt (after the files it
// wrote), a second message's answer streams in, and the mock LLM saw the user's key as the
// bearer on every call. Then the files tree and viewer show the file the agent wrote, and
// Download gives an archive with it and without node_modules and .git. Along the way it
// measures the time from the mock sending a token to the page showing it.
func TestBrowserConversation(t *testing.T) {
	key := "sk-chat-key-5678"
	ctx, doce, llm := chatBrowser(t, "chat", key)

	write := func(path, content string) mockToolCall {
		return mockToolCall{Name: "write", Args: map[string]any{"filePath": "/workspace/" + path, "content": content}}
	}
	llm.script("Write the greeting file",
		mockReply{ToolCalls: []mockToolCall{
			write("hello.txt", "hi from the agent\n"),
			write("node_modules/dep/index.js", "module.exports = 1\n"),
			write(".git/HEAD", "ref: refs/heads/main\n"),
		}},
		mockReply{Chunks: []string{"I wrote ", "hello.txt", " for you."}},
	)
	const tokens = 120
	var mu sync.Mutex
	sent := make([]time.Time, tokens)
	chunks := make([]string, tokens)
	for i := range chunks {
		chunks[i] = fmt.Sprintf("w%03d; ", i)
	}
	llm.script("Stream a long answer", mockReply{Chunks: chunks, Delay: 15 * time.Millisecond, Sent: func(i int, at time.Time) {
		mu.Lock()
		sent[i] = at
		mu.Unlock()
	}})

	createProjectInPage(t, ctx, doce, "Write the greeting file, please.")
	run(t, ctx, "the page shows the answer to the first prompt", assistantSays("I wrote hello.txt for you."))
	var edits string
	run(t, ctx, "read the tool calls", chromedp.Text(`#conversation`, &edits))
	if !strings.Contains(edits, "Wrote hello.txt") {
		t.Errorf("the conversation does not show the file the agent wrote:\n%s", edits)
	}
	screenshot(t, ctx, "20-conversation-first-answer")

	var ok bool
	run(t, ctx, "watch the page for streamed tokens", chromedp.Evaluate(latencyObserver, &ok))
	run(t, ctx, "send a second message", sendMessage("Stream a long answer now."))
	run(t, ctx, "the user's message shows", chromedp.WaitVisible(`//li[contains(@class, "user")]//div[contains(., "Stream a long answer now.")]`))
	run(t, ctx, "the streamed answer appears whole", assistantSays(strings.TrimSpace(strings.Join(chunks, ""))))
	screenshot(t, ctx, "21-conversation-streamed")
	var focused string
	run(t, ctx, "focus after sending", chromedp.Evaluate(`document.activeElement.id`, &focused))
	if focused != "message" {
		t.Errorf("after sending, focus is on #%s, want the message box", focused)
	}

	// The token-to-browser latency: the mock's send time to the page showing the token.
	var seen []float64
	run(t, ctx, "read the page's token times", chromedp.Evaluate(`window.__seen`, &seen))
	if len(seen) != tokens {
		t.Fatalf("the page saw %d of %d tokens", len(seen), tokens)
	}
	mu.Lock()
	lat := make([]float64, tokens)
	for i := range lat {
		lat[i] = seen[i] - float64(sent[i].UnixNano())/1e6
	}
	mu.Unlock()
	slices.Sort(lat)
	t.Logf("token to browser over %d streamed chunks: p50 %.1f ms, p99 %.1f ms, max %.1f ms (min %.1f ms)",
		tokens, percentileOf(lat, 50), percentileOf(lat, 99), lat[len(lat)-1], lat[0])
	if lat[0] < -5 { // a token shown before it was sent would mean the clocks disagree
		t.Errorf("a token showed %.1f ms before the mock sent it", -lat[0])
	}

	// The mock saw the user's key on both prompts' calls.
	var calls int
	for _, r := range llm.requests() {
		if r.Path != "/v1/chat/completions" {
			continue
		}
		calls++
		if r.Authorization != "Bearer "+key {
			t.Errorf("an LLM call carried %q, want the user's key", redact(r.Authorization, key))
		}
	}
	if calls < 3 { // the first prompt's two turns and the second prompt
		t.Errorf("the mock LLM saw %d completion calls, want at least 3", calls)
	}

	// Files: the tree shows the file the agent wrote, and the viewer its content.
	run(t, ctx, "open the file in the viewer",
		chromedp.Click(`#tab-files`),
		chromedp.Click(`#files-refresh`),
		chromedp.WaitVisible(`#files button[data-path="hello.txt"]`),
		chromedp.Click(`#files button[data-path="hello.txt"]`),
		chromedp.WaitVisible(`//pre[@id="viewer-content" and contains(., "hi from the agent")]`),
	)
	run(t, ctx, "the viewer's heading has focus", chromedp.Evaluate(`document.activeElement.id`, &focused))
	if focused != "viewer-path" {
		t.Errorf("after opening a file, focus is on #%s, want the viewer", focused)
	}
	screenshot(t, ctx, "22-files-viewer")

	// Download, with the page's button: .tar.gz without .git and node_modules; then .zip, and
	// .tar.gz with .git.
	names := download(t, ctx, "tar.gz", false)
	if !hasSuffix(names, "/hello.txt") || hasPart(names, "node_modules") || hasPart(names, ".git") {
		t.Errorf("the .tar.gz holds %v: want hello.txt, without node_modules and .git", names)
	}
	names = download(t, ctx, "zip", false)
	if !hasSuffix(names, "/hello.txt") || hasPart(names, "node_modules") || hasPart(names, ".git") {
		t.Errorf("the .zip holds %v: want hello.txt, without node_modules and .git", names)
	}
	names = download(t, ctx, "tar.gz", true)
	if !hasSuffix(names, "/hello.txt") || !hasSuffix(names, "/.git/HEAD") || hasPart(names, "node_modules") {
		t.Errorf("the .tar.gz with .git holds %v: want hello.txt and .git/HEAD, without node_modules", names)
	}
}

func hasSuffix(names []string, suffix string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, suffix) })
}

func hasPart(names []string, part string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return slices.Contains(strings.Split(n, "/"), part) })
}

// download picks format (and .git) in the page's Download form, clicks Download, waits for
// Chromium to save the file and returns the archive's entry names.
func download(t *testing.T, ctx context.Context, format string, git bool) []string {
	t.Helper()
	dir := t.TempDir()
	done := make(chan string, 1)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chromedp.ListenTarget(lctx, func(ev any) {
		if e, ok := ev.(*browser.EventDownloadProgress); ok && e.State == browser.DownloadProgressStateCompleted {
			select {
			case done <- e.GUID:
			default:
			}
		}
	})
	run(t, ctx, "download "+format,
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).WithDownloadPath(dir).WithEventsEnabled(true),
		chromedp.SetValue(`#format`, format),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector('.download input[name="git"]').checked = %v`, git), nil),
		chromedp.Click(`#download`),
	)
	var guid string
	select {
	case guid = <-done:
	case <-time.After(time.Minute):
		t.Fatalf("the %s download did not complete", format)
	}
	b, err := os.ReadFile(filepath.Join(dir, guid))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if format == "zip" {
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("the download is no zip: %v", err)
		}
		for _, f := range zr.File {
			names = append(names, f.Name)
		}
		return names
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the download is no gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		} else if err != nil {
			t.Fatalf("the download is no whole tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

// TestBrowserPermissionAbortNarrow: a permission request of the agent answered from the page
// (and the agent goes on), Stop ending a long answer, and the page at 375 px wide and with the
// keyboard alone.
func TestBrowserPermissionAbortNarrow(t *testing.T) {
	// The agent asks before it edits files (the write tool needs no shell in the workspace).
	ctx, doce, llm := chatBrowser(t, "chat-perm", "sk-perm-key-0001", "DOCE_AGENT_ASK=edit")
	llm.script("Note this down",
		mockReply{ToolCalls: []mockToolCall{{Name: "write", Args: map[string]any{"filePath": "/workspace/note.txt", "content": "noted"}}}},
		mockReply{Chunks: []string{"I wrote ", "the note."}},
	)
	long := make([]string, 400)
	for i := range long {
		long[i] = fmt.Sprintf("s%03d ", i)
	}
	llm.script("Talk for long", mockReply{Chunks: long, Delay: 50 * time.Millisecond})

	createProjectInPage(t, ctx, doce, "Say hello.")
	run(t, ctx, "the first answer", assistantSays("Hello from the mock."))

	run(t, ctx, "the agent asks for permission",
		sendMessage("Note this down in a file."),
		chromedp.WaitVisible(`#requests .permission`),
	)
	var req string
	run(t, ctx, "read the request", chromedp.Text(`#requests .permission`, &req))
	if !strings.Contains(req, "edit") {
		t.Errorf("the permission request says %q", req)
	}
	screenshot(t, ctx, "23-permission")
	run(t, ctx, "allow once, and the agent goes on",
		chromedp.Click(`//div[contains(@class, "permission")]//button[normalize-space()="Allow once"]`),
		chromedp.WaitNotPresent(`#requests .permission`),
		assistantSays("I wrote the note."),
	)

	// Stop: a long answer stops growing, well before its end.
	run(t, ctx, "a long answer starts",
		sendMessage("Talk for long, please."),
		assistantSays("s010"),
		chromedp.WaitEnabled(`#stop`),
	)
	run(t, ctx, "stop it", chromedp.Click(`#stop`), chromedp.WaitVisible(`#stop[disabled]`, chromedp.ByQuery))
	textLen := func() int {
		var n int
		run(t, ctx, "measure the answer", chromedp.Evaluate(`document.getElementById("conversation").textContent.length`, &n))
		return n
	}
	time.Sleep(time.Second) // what was on its way when Stop was clicked
	before := textLen()
	time.Sleep(2 * time.Second)
	if after := textLen(); after != before {
		t.Errorf("the answer grew from %d to %d characters after Stop", before, after)
	}
	var conv string
	run(t, ctx, "read the conversation", chromedp.Text(`#conversation`, &conv))
	if strings.Contains(conv, "s399") {
		t.Error("the long answer ran to its end despite Stop")
	}
	screenshot(t, ctx, "24-stopped")

	// A phone: the page fits 375 px, and works with the keyboard alone.
	var loc string
	run(t, ctx, "where the project is", chromedp.Location(&loc))
	var scrollWidth int
	run(t, ctx, "emulate a 375 px phone",
		chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile),
		chromedp.Navigate(loc),
		chromedp.WaitVisible(`#composer`),
		assistantSays("I wrote the note."),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &scrollWidth),
	)
	if scrollWidth > 375 {
		t.Errorf("the project page is %d px wide at a 375 px viewport", scrollWidth)
	}
	screenshot(t, ctx, "25-project-narrow")

	// From the top of the page, Tab reaches the message box, then Send, then the workbench's
	// tabs (one stop: the arrow keys move between them); in the Files tab, Tab goes on to the
	// files and the download, each with a visible outline.
	run(t, ctx, "start from the top", chromedp.Focus(`nav .brand`))
	tabTo := func(want ...string) {
		t.Helper()
		var got []string
		for i := 0; i < 80 && len(got) < len(want); i++ {
			var id, outline string
			run(t, ctx, "tab", chromedp.KeyEvent("\t"),
				chromedp.Evaluate(`document.activeElement.id`, &id),
				chromedp.Evaluate(`getComputedStyle(document.activeElement).outlineStyle`, &outline))
			if slices.Contains(want, id) {
				if outline == "none" {
					t.Errorf("#%s has focus but no visible outline", id)
				}
				got = append(got, id)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("keyboard focus order %v, want %v", got, want)
		}
	}
	tabTo("message", "send", "tab-preview")
	var tab string
	run(t, ctx, "the arrow keys move between the tabs", chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight),
		chromedp.Evaluate(`document.activeElement.id`, &tab))
	if tab != "tab-files" {
		t.Errorf("two ArrowRight from Preview focus #%s, want #tab-files", tab)
	}
	tabTo("files-refresh", "format", "download")
	answers := count(t, ctx, "#conversation li.msg.assistant")
	run(t, ctx, "send with the keyboard alone",
		chromedp.Focus(`#message`),
		chromedp.KeyEvent("Sent from the keyboard."),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(`//li[contains(@class, "user")]//div[contains(., "Sent from the keyboard.")]`),
		chromedp.Poll(fmt.Sprintf(`document.querySelectorAll("#conversation li.msg.assistant").length > %d`, answers), nil),
	)
	// The live region says the new answer once it is whole.
	run(t, ctx, "the screen reader hears the answer",
		chromedp.Poll(`document.getElementById("announcer").textContent.indexOf("Agent: Hello from the mock.") === 0`, nil))
	screenshot(t, ctx, "26-project-narrow-keyboard")
}
