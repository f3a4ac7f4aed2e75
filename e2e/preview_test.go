package e2e

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// The app the test LLM has the agent write and start: static files from /workspace/site, and a
// WebSocket echo on /ws (Python's standard library has no WebSocket server: the handshake and
// text frames by hand), on $PORT.
const previewServerPy = `import base64, functools, hashlib, http.server, os, struct

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path != "/ws" or self.headers.get("Upgrade", "").lower() != "websocket":
            return super().do_GET()
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            op, n = head[0] & 15, head[1] & 127
            if n == 126:
                n = struct.unpack(">H", self.rfile.read(2))[0]
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if op == 8:
                return
            reply = b"echo:" + data
            self.wfile.write(bytes([0x81, len(reply)]) + reply)
            self.wfile.flush()

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "3000"))), functools.partial(Handler, directory="/workspace/site")).serve_forever()
`

func previewPage(version string) string {
	return `<!doctype html><html><head><title>the app</title></head><body><h1 id="app">Preview ` + version + `</h1></body></html>`
}

// TestPreviewInBrowser: the agent writes a page and a server and starts it on the preview
// port; the project page's frame shows it in Chromium; another turn edits it and Reload shows
// the edit; on the preview origin no doce session is readable or usable; a WebSocket echo works
// through the preview; another user, a signed-out browser and an expired token are refused.
// Then it measures what the proxy costs against the published port.
func TestPreviewInBrowser(t *testing.T) {
	stack := requireStack(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-preview-%d", time.Now().UnixNano()))
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{"providerId": "custom", "apiKey": "sk-preview",
		"baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}

	llm.script("BUILD-THE-PREVIEW",
		mockReply{ToolCalls: []mockToolCall{
			{Name: "write", Args: map[string]any{"filePath": "/workspace/site/index.html", "content": previewPage("v1")}},
			{Name: "write", Args: map[string]any{"filePath": "/workspace/server.py", "content": previewServerPy}},
		}},
		mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{
			"command":     "cd /workspace && head -c 10485760 /dev/urandom > site/big.bin && (nohup python3 server.py >server.log 2>&1 &) && sleep 1",
			"description": "Start the app on port 3000",
		}}}},
		mockReply{Chunks: []string{"The app runs on port 3000."}},
	)
	llm.script("EDIT-THE-PREVIEW",
		mockReply{ToolCalls: []mockToolCall{{Name: "bash", Args: map[string]any{
			"command":     "sed -i 's/Preview v1/Preview v2/' /workspace/site/index.html",
			"description": "Change the heading",
		}}}},
		mockReply{Chunks: []string{"Changed."}},
	)
	proj := createProjectOn(t, hc, doce, "custom", "mock-model", "BUILD-THE-PREVIEW: a page with a heading.")
	waitStatus(t, hc, doce, proj.ID, "ready", 6*time.Minute) // a loaded machine starts OpenCode slowly

	st := openStoreAt(t, doce)
	defer st.Close()
	p, err := st.Project(context.Background(), proj.ID)
	if err != nil || p.PreviewHostPort == 0 {
		t.Fatalf("the project records no preview port: %+v %v", p, err)
	}
	direct := "http://127.0.0.1:" + strconv.Itoa(p.PreviewHostPort)
	waitForBody(t, direct+"/", "Preview v1", 2*time.Minute)

	port := doce.URL[strings.LastIndex(doce.URL, ":")+1:]
	previewOrigin := "http://" + proj.ID + ".preview.localhost:" + port

	// A token signed now and never used: at the end, past its minute, it must be refused.
	staleToken := previewLink(t, hc, doce, proj.ID)
	staleAt := time.Now()

	// Chromium resolves *.localhost to loopback itself. Site isolation is off so the test can
	// read the cross-origin frame's document through the page (chromedp.FromNode).
	ctx := newBrowser(t, 1280, 1000, chromedp.Flag("disable-site-isolation-trials", true), chromedp.Flag("disable-features", "IsolateOrigins,site-per-process"))
	run(t, ctx, "sign in",
		chromedp.Navigate(doce.URL+"/login"),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "admin"),
		chromedp.SendKeys(`#password`, "correct horse battery"),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#prompt`),
	)
	run(t, ctx, "open the project", chromedp.Navigate(doce.URL+"/projects/"+proj.ID), chromedp.WaitVisible(`#preview-frame`))
	if got := frameText(t, ctx, "Preview v1"); got != "Preview v1" {
		t.Fatalf("the frame shows %q, want Preview v1", got)
	}
	screenshot(t, ctx, "20-project-preview")

	// Another agent turn edits the page; Reload shows the edit.
	promptAgain(t, stack, st, proj.ID, "EDIT-THE-PREVIEW: change the heading.")
	waitForBody(t, direct+"/", "Preview v2", 2*time.Minute)
	run(t, ctx, "reload the preview", chromedp.Click(`#preview-reload`))
	if got := frameText(t, ctx, "Preview v2"); got != "Preview v2" {
		t.Fatalf("after Reload the frame shows %q, want Preview v2", got)
	}

	// The preview on its own (Open in a new tab goes to the same address).
	var href, loc, cookies string
	run(t, ctx, "read the new tab's address", chromedp.AttributeValue(`#preview-open`, "href", &href, nil))
	run(t, ctx, "open in a new tab", chromedp.Navigate(doce.URL+href), chromedp.WaitVisible(`#app`), chromedp.Location(&loc), chromedp.Evaluate(`document.cookie`, &cookies))
	if !strings.HasPrefix(loc, previewOrigin+"/") {
		t.Fatalf("the preview opened at %s, want under %s", loc, previewOrigin)
	}
	if strings.Contains(cookies, "doce") {
		t.Errorf("document.cookie on the preview origin: %q, want no doce cookie readable", cookies)
	}
	// A credentialed fetch to doce's API from the preview: refused (no CORS grant, and doce's
	// session cookie does not go to it from another site). A form-style POST is refused too.
	var fetchResult string
	run(t, ctx, "fetch doce's API from the preview", chromedp.Evaluate(fmt.Sprintf(`
		fetch(%q, {credentials: "include"}).then(r => r.text().then(t => "read " + r.status + " " + t), e => "refused: " + e)`, doce.URL+"/api/v1/projects"),
		&fetchResult, awaitPromise))
	if !strings.HasPrefix(fetchResult, "refused") || strings.Contains(fetchResult, proj.ID) {
		t.Errorf("credentialed fetch from the preview to doce: %s", fetchResult)
	}
	var postStatus string
	run(t, ctx, "POST to doce from the preview", chromedp.Evaluate(fmt.Sprintf(`
		fetch(%q, {method: "POST", credentials: "include", mode: "no-cors", body: "x"}).then(r => "sent " + r.type, e => "refused: " + e)`, doce.URL+"/api/v1/projects/"+proj.ID+"/cancel"),
		&postStatus, awaitPromise))
	if got := getProject(t, hc, doce, proj.ID); got.Status != "ready" {
		t.Errorf("a POST from the preview changed the project: %s (%s)", got.Status, postStatus)
	}
	// A WebSocket echo served by the workspace's app, through the preview.
	var echo string
	run(t, ctx, "WebSocket echo", chromedp.Evaluate(`new Promise((ok, fail) => {
		const ws = new WebSocket("ws://" + location.host + "/ws");
		ws.onopen = () => ws.send("ping");
		ws.onmessage = e => { ok(e.data); ws.close(); };
		ws.onerror = () => fail("websocket error");
		setTimeout(() => fail("timeout"), 10000);
	})`, &echo, awaitPromise))
	if echo != "echo:ping" {
		t.Errorf("WebSocket through the preview: %q, want echo:ping", echo)
	}

	// A signed-out browser is refused with a page that says where to open the preview.
	anon := newBrowser(t, 1000, 700)
	var anonText string
	run(t, anon, "the preview signed out", chromedp.Navigate(previewOrigin+"/"), chromedp.Text(`body`, &anonText))
	if !strings.Contains(anonText, "Open this preview from doce") || strings.Contains(anonText, "Preview v2") {
		t.Errorf("signed-out browser on the preview: %q", anonText)
	}
	screenshot(t, anon, "21-preview-signed-out")

	// Another user: doce signs no token for a project not theirs, and the owner's token is
	// not theirs to use twice.
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/admin/users", map[string]any{"username": "other", "password": "another long password"}); status != http.StatusCreated {
		t.Fatalf("create user: %d %s", status, body)
	}
	other := newClient(t)
	if resp, err := other.PostForm(doce.URL+"/login", url.Values{"username": {"other"}, "password": {"another long password"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in as other: %v", err)
	}
	resp, err := other.Get(doce.URL + "/projects/" + proj.ID + "/preview")
	if err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("another user asking for the preview: %v %v, want 404", resp.StatusCode, err)
	}
	// A preview cookie for this project, got by the owner: doce's Go client can see it
	// (browsers cannot). Taken by someone after the owner signs out, it is refused.
	owner2 := newClient(t)
	owner2.PostForm(doce.URL+"/login", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	cookie := previewCookieFor(t, doce, previewLink(t, owner2, doce, proj.ID))
	if status, body := previewGet(t, doce, proj.ID, "/", cookie); status != http.StatusOK || !strings.Contains(body, "Preview v2") {
		t.Fatalf("the owner's preview cookie: %d %s", status, body)
	}
	owner2.Post(doce.URL+"/logout", "", nil)
	if status, body := previewGet(t, doce, proj.ID, "/", cookie); status != http.StatusNotFound || !strings.Contains(body, "/projects/"+proj.ID) {
		t.Errorf("the preview cookie after signing out: %d %s", status, body)
	}

	// Figures: the proxy against the published port.
	cookie = previewCookieFor(t, doce, previewLink(t, hc, doce, proj.ID))
	measurePreviewProxy(t, doce, proj.ID, cookie, direct)

	// The token signed at the start, now past its minute.
	if wait := time.Minute + 2*time.Second - time.Since(staleAt); wait > 0 {
		time.Sleep(wait)
	}
	resp = previewExchange(t, doce, proj.ID, staleToken)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("an expired token: %d, cookie %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
}

func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// frameText waits until the preview frame's #app heading reads want, and returns what it read.
func frameText(t *testing.T, ctx context.Context, want string) string {
	t.Helper()
	var got string
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var frames []*cdp.Node
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := chromedp.Run(c, chromedp.Nodes(`#preview-frame`, &frames, chromedp.ByQuery))
		if err == nil && len(frames) == 1 {
			err = chromedp.Run(c, chromedp.Text(`#app`, &got, chromedp.ByQuery, chromedp.FromNode(frames[0])))
		}
		cancel()
		if err == nil && got == want {
			return got
		}
		time.Sleep(300 * time.Millisecond)
	}
	var html string
	chromedp.Run(ctx, chromedp.OuterHTML(`main`, &html))
	t.Logf("the project page:\n%s", html)
	return got
}

func waitForBody(t *testing.T, u, want string, timeout time.Duration) {
	t.Helper()
	waitFor(t, u+" serving "+want, timeout, func() (bool, error) {
		resp, err := http.Get(u)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), want), fmt.Errorf("%d %s", resp.StatusCode, b)
	})
}

// promptAgain sends the project's OpenCode session another message, as a chat would.
func promptAgain(t *testing.T, stack stackEnv, st *store.Store, projectID, text string) {
	t.Helper()
	ctx := context.Background()
	p, err := st.Project(ctx, projectID)
	if err != nil {
		t.Fatal(err)
	}
	transit, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", "doce-credentials", 2)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := transit.Decrypt(ctx, p.ServerPasswordCiphertext, secrets.ProjectContext(p.ID, "server_password"))
	if err != nil {
		t.Fatal(err)
	}
	oc := opencode.New("http://127.0.0.1:"+strconv.Itoa(p.HostPort), string(pw), nil)
	if err := oc.PromptAsync(ctx, p.OpenCodeSessionID, opencode.Model{ProviderID: "custom", ModelID: "mock-model"}, text); err != nil {
		t.Fatal(err)
	}
}

// previewLink asks doce, as hc's user, for the project's preview and returns the one-time
// exchange address it redirects to.
func previewLink(t *testing.T, hc *recordingClient, doce *doceProcess, projectID string) string {
	t.Helper()
	resp, err := hc.Get(doce.URL + "/projects/" + projectID + "/preview")
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /projects/%s/preview: %v %v", projectID, resp.StatusCode, err)
	}
	return resp.Header.Get("Location")
}

// previewRequest makes a request for path on the project's preview host. Go's resolver may
// not resolve *.localhost: it dials doce's loopback address and names the host in Host.
func previewRequest(doce *doceProcess, projectID, pathAndQuery string) *http.Request {
	req, _ := http.NewRequest(http.MethodGet, doce.URL+pathAndQuery, nil)
	req.Host = projectID + ".preview.localhost" + doce.URL[strings.LastIndex(doce.URL, ":"):]
	return req
}

func previewExchange(t *testing.T, doce *doceProcess, projectID, link string) *http.Response {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultTransport.RoundTrip(previewRequest(doce, projectID, u.RequestURI()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func previewCookieFor(t *testing.T, doce *doceProcess, link string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(link)
	projectID := strings.SplitN(u.Host, ".", 2)[0]
	resp := previewExchange(t, doce, projectID, link)
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-doce_preview" {
			return c
		}
	}
	t.Fatalf("the exchange set no preview cookie: %d", resp.StatusCode)
	return nil
}

func previewGet(t *testing.T, doce *doceProcess, projectID, path string, cookie *http.Cookie) (int, string) {
	t.Helper()
	req := previewRequest(doce, projectID, path)
	req.AddCookie(cookie)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// measurePreviewProxy reports the latency the proxy adds at 100 requests a second (1000
// requests each way) and a 10 MB download's throughput, through the proxy and straight from
// the published port.
func measurePreviewProxy(t *testing.T, doce *doceProcess, projectID string, cookie *http.Cookie, direct string) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	via := func(proxied bool, path string) *http.Request {
		if !proxied {
			req, _ := http.NewRequest(http.MethodGet, direct+path, nil)
			return req
		}
		req := previewRequest(doce, projectID, path)
		req.AddCookie(cookie)
		return req
	}
	get := func(req *http.Request) (int64, error) {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return n, err
	}
	const n = 1000
	latencies := func(proxied bool) []time.Duration {
		out := make([]time.Duration, n)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failed error
		tick := time.NewTicker(10 * time.Millisecond) // 100 requests a second
		defer tick.Stop()
		for i := range n {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				_, err := get(via(proxied, "/index.html"))
				out[i] = time.Since(start)
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failed != nil {
			t.Fatalf("latency run (proxied %v): %v", proxied, failed)
		}
		slices.Sort(out)
		return out
	}
	pct := func(d []time.Duration, p float64) time.Duration { return d[int(math.Ceil(p*float64(len(d))))-1] }
	dl, pl := latencies(false), latencies(true)
	t.Logf("static page at 100 req/s, %d requests: direct p50 %v p99 %v; through the preview p50 %v p99 %v; added p50 %v p99 %v",
		n, pct(dl, .5), pct(dl, .99), pct(pl, .5), pct(pl, .99), pct(pl, .5)-pct(dl, .5), pct(pl, .99)-pct(dl, .99))

	throughput := func(proxied bool) float64 {
		var rates []float64
		for range 5 {
			start := time.Now()
			got, err := get(via(proxied, "/big.bin"))
			if err != nil || got != 10<<20 {
				t.Fatalf("10 MB download (proxied %v): %d bytes, %v", proxied, got, err)
			}
			rates = append(rates, float64(got)/(1<<20)/time.Since(start).Seconds())
		}
		slices.Sort(rates)
		return rates[len(rates)/2]
	}
	td, tp := throughput(false), throughput(true)
	t.Logf("10 MB download, median of 5: direct %.0f MB/s, through the preview %.0f MB/s", td, tp)
}
