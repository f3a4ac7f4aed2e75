package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/doce-dev/doce/oauth/oauthtest"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// OAuth end to end: device logins against the local authorization server (ory/fosite, with
// GitHub's and ChatGPT's paths), tokens sealed by the real Vault, projects on the real Docker and
// OpenCode holding the tokens doce pushes as it refreshes them on the real Temporal.

// tokenLife is short so the tests see several refreshes, and long enough that the quarter of
// it doce refreshes ahead (10 s) covers OpenCode's slowest PUT /auth seen here (~7 s, while
// the first prompt is being retried).
const tokenLife = 40 * time.Second

func startAuthServer(t *testing.T) *oauthtest.Server {
	return oauthtest.Start(t, oauthtest.Options{ClientIDs: []string{"doce-e2e"}, AccessTokenLifespan: tokenLife, PollInterval: time.Second})
}

func oauthEnv(authURL string) []string {
	return []string{
		"DOCE_OAUTH_URLS=github-copilot=" + authURL + ",openai=" + authURL, // github.com's stand-in

		"DOCE_OAUTH_CLIENT_IDS=github-copilot=doce-e2e,openai=doce-e2e",
	}
}

type loginState struct {
	State, UserCode, VerificationURI, Error string
	ExpiresAt                               *time.Time
}

func startLogin(t *testing.T, hc *recordingClient, doce *doceProcess, provider string, in any) loginState {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections/oauth/"+provider+"/start", in)
	if status != http.StatusAccepted {
		t.Fatalf("start %s sign-in: %d %s", provider, status, body)
	}
	var v struct{ Login loginState }
	json.Unmarshal(body, &v)
	if v.Login.State != "waiting-for-user" || v.Login.UserCode == "" || v.Login.VerificationURI == "" || v.Login.ExpiresAt == nil {
		t.Fatalf("start %s sign-in: %s", provider, body)
	}
	return v.Login
}

func waitLogin(t *testing.T, hc *recordingClient, doce *doceProcess, provider, want string) loginState {
	t.Helper()
	var got loginState
	waitFor(t, provider+" sign-in "+want, time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/connections/oauth/"+provider, nil)
		var v struct{ Login loginState }
		json.Unmarshal(body, &v)
		got = v.Login
		return status == http.StatusOK && got.State == want, fmt.Errorf("%d %s", status, body)
	})
	return got
}

type connectionState struct {
	ProviderID, AuthType, Status, Error, DisplayHint string
	ExpiresAt                                        *time.Time
}

func connectionOf(t *testing.T, hc *recordingClient, doce *doceProcess, provider string) (connectionState, bool) {
	t.Helper()
	_, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/connections", nil)
	var v struct{ Connections []connectionState }
	json.Unmarshal(body, &v)
	for _, c := range v.Connections {
		if c.ProviderID == provider {
			return c, true
		}
	}
	return connectionState{}, false
}

// authEntry is what OpenCode holds in auth.json for a provider.
type authEntry struct {
	Type, Access, Refresh, EnterpriseURL, AccountID string
	Expires                                         *int64
}

func workspaceAuth(t *testing.T, docker *dockerclient.Client, projectID, provider string) (authEntry, bool) {
	t.Helper()
	cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+projectID))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers of %s: %d %v", projectID, len(cs), err)
	}
	var auth map[string]authEntry
	json.Unmarshal(readContainerFile(t, docker, cs[0].ID, workspace.AuthFile), &auth)
	e, ok := auth[provider]
	return e, ok
}

func createProjectOn(t *testing.T, hc *recordingClient, doce *doceProcess, provider, model, prompt string) projectState {
	t.Helper()
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "providerId": provider, "modelId": model})
	if status != http.StatusCreated {
		t.Fatalf("create project on %s: %d %s", provider, status, body)
	}
	var v struct{ Project projectState }
	json.Unmarshal(body, &v)
	return v.Project
}

// TestOAuthLoginAndRefreshReachRunningProjects signs in to GitHub Copilot and ChatGPT with
// device codes, runs a project on each, and watches doce refresh the tokens and hand them to
// the projects' OpenCode before they expire; then a revoked grant marks its connection expired
// and disconnecting stops the other's refresher.
func TestOAuthLoginAndRefreshReachRunningProjects(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	srv := startAuthServer(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-oauth-%d", time.Now().UnixNano()), oauthEnv(srv.URL())...)
	hc := admin(t, doce, "sk-e2e-oauth")
	adminID := mustUserID(t, doce, "admin")

	// Bad requests say what is wrong.
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections/oauth/anthropic/start", nil)
	expectError(t, status, body, http.StatusBadRequest, "Anthropic has no sign-in; connect it with a key.")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections/oauth/nope/start", nil)
	expectError(t, status, body, http.StatusNotFound, "No such provider.")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections/oauth/openai/start", map[string]any{"enterpriseUrl": "ghe.example.com"})
	expectError(t, status, body, http.StatusBadRequest, "OpenAI has no enterprise hosts; leave the field empty.")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/connections/oauth/github-copilot/start", map[string]any{"enterpriseUrl": "http://ghe.example.com"})
	expectError(t, status, body, http.StatusBadRequest, "Enter your GitHub Enterprise host, e.g. company.ghe.com (https).")
	status, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/connections/oauth/openai", nil)
	expectError(t, status, body, http.StatusNotFound, "No such sign-in.")

	// A denied sign-in says so and stores nothing.
	denied := startLogin(t, hc, doce, "openai", nil)
	if err := srv.Deny(denied.UserCode); err != nil {
		t.Fatal(err)
	}
	if got := waitLogin(t, hc, doce, "openai", "denied"); got.Error == "" {
		t.Errorf("a denied sign-in gives no reason: %+v", got)
	}
	if _, ok := connectionOf(t, hc, doce, "openai"); ok {
		t.Fatal("a denied sign-in left a connection")
	}

	// Two sign-ins that succeed: GitHub Copilot at an enterprise host the user names (the
	// local server on loopback, where plain http is allowed), ChatGPT at its configured URL.
	enterprise := map[string]any{"github-copilot": map[string]any{"enterpriseUrl": srv.URL()}, "openai": nil}
	for _, provider := range []string{"github-copilot", "openai"} {
		start := time.Now()
		l := startLogin(t, hc, doce, provider, enterprise[provider])
		time.Sleep(1500 * time.Millisecond) // the user types the code; doce polls meanwhile
		if got := waitLogin(t, hc, doce, provider, "waiting-for-user"); got.UserCode != l.UserCode {
			t.Fatalf("the code changed while waiting: %+v", got)
		}
		if err := srv.Approve(l.UserCode); err != nil {
			t.Fatal(err)
		}
		waitLogin(t, hc, doce, provider, "connected")
		c, ok := connectionOf(t, hc, doce, provider)
		if !ok || c.AuthType != "oauth" || c.Status != "connected" || c.ExpiresAt == nil {
			t.Fatalf("%s connection after sign-in: %+v", provider, c)
		}
		t.Logf("%s: signed in %s after start (1.5 s of it the user)", provider, time.Since(start).Round(100*time.Millisecond))
	}

	copilot := createProjectOn(t, hc, doce, "github-copilot", "gpt-4.1", "oauth copilot project")
	chatgpt := createProjectOn(t, hc, doce, "openai", "gpt-5", "oauth chatgpt project")
	waitStatus(t, hc, doce, copilot.ID, "ready", 2*time.Minute)
	waitStatus(t, hc, doce, chatgpt.ID, "ready", 2*time.Minute)

	// What OpenCode holds has the shape OpenCode 1.18.33 keeps for each provider.
	var seenTokens []string
	gh, ok := workspaceAuth(t, docker, copilot.ID, "github-copilot")
	if !ok || gh.Type != "oauth" || gh.Access == "" || gh.Refresh != gh.Access || gh.Expires == nil || *gh.Expires != 0 ||
		gh.EnterpriseURL != strings.TrimPrefix(srv.URL(), "http://") {
		t.Fatalf("github-copilot in auth.json: type %q, access set %v, refresh==access %v, expires %v, enterpriseUrl %q",
			gh.Type, gh.Access != "", gh.Refresh == gh.Access, gh.Expires, gh.EnterpriseURL)
	}
	oa, ok := workspaceAuth(t, docker, chatgpt.ID, "openai")
	if !ok || oa.Type != "oauth" || oa.Access == "" || oa.Refresh == "" || oa.Refresh == oa.Access || oa.Expires == nil || *oa.Expires == 0 || !strings.HasPrefix(oa.AccountID, "acct-test-") {
		t.Fatalf("openai in auth.json: type %q, access set %v, refresh set %v, expires %v, account %q", oa.Type, oa.Access != "", oa.Refresh != "", oa.Expires, oa.AccountID)
	}
	if !holdsAcceptedToken(t, docker, srv, copilot.ID, "github-copilot", gh) || !holdsAcceptedToken(t, docker, srv, chatgpt.ID, "openai", oa) {
		t.Fatal("a project holds an access token the provider does not accept")
	}
	seenTokens = append(seenTokens, gh.Access, oa.Access, oa.Refresh)

	// Across two expiries each project holds a token the provider accepts, handed over before
	// the one it replaces expired. Both providers are watched at once.
	var mu sync.Mutex
	t.Run("refreshes", func(t *testing.T) {
		for _, tc := range []struct {
			project, provider string
			first             authEntry
		}{{copilot.ID, "github-copilot", gh}, {chatgpt.ID, "openai", oa}} {
			t.Run(tc.provider, func(t *testing.T) {
				t.Parallel()
				prev := tc.first
				prevExpiry := time.Now().Add(tokenLife) // an upper bound: the token was issued before now
				for round := 1; round <= 2; round++ {
					var next authEntry
					waitFor(t, fmt.Sprintf("refresh %d in the workspace", round), 2*tokenLife, func() (bool, error) {
						e, _ := workspaceAuth(t, docker, tc.project, tc.provider)
						next = e
						return e.Access != prev.Access, fmt.Errorf("still the token of the round before")
					})
					if now := time.Now(); now.After(prevExpiry) {
						t.Errorf("round %d: the new token arrived %s after the old one expired", round, now.Sub(prevExpiry))
					}
					if !holdsAcceptedToken(t, docker, srv, tc.project, tc.provider, next) {
						t.Errorf("round %d: the workspace holds a token the provider does not accept", round)
					}
					mu.Lock()
					seenTokens = append(seenTokens, next.Access, next.Refresh)
					mu.Unlock()
					prev, prevExpiry = next, time.Now().Add(tokenLife)
				}
			})
		}
	})

	// The user revokes doce's ChatGPT access at the provider: the next refresh is refused, the
	// connection is expired and says what to do, and its refresher has ended.
	refresh := storedRefreshToken(t, stack, doce, adminID, "openai")
	if err := srv.RevokeRefreshToken(refresh); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "openai connection expired", 2*tokenLife, func() (bool, error) {
		c, _ := connectionOf(t, hc, doce, "openai")
		return c.Status == "expired" && strings.Contains(c.Error, "Log in again"), fmt.Errorf("%+v", c)
	})
	tc := temporalClient(t, stack)
	waitWorkflowStatus(t, tc, "oauth-refresh:"+adminID+":openai", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, 30*time.Second) // openai refresher ended
	resp, err := hc.Get(doce.URL + "/settings/providers")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("Log in again")) {
		t.Error("the providers page does not offer to log in again")
	}

	// Logging in again brings the connection back, hands the running project the new token at
	// once and starts a new refresher.
	stale, _ := workspaceAuth(t, docker, chatgpt.ID, "openai")
	again := startLogin(t, hc, doce, "openai", nil)
	if err := srv.Approve(again.UserCode); err != nil {
		t.Fatal(err)
	}
	waitLogin(t, hc, doce, "openai", "connected")
	if c, _ := connectionOf(t, hc, doce, "openai"); c.Status != "connected" || c.Error != "" {
		t.Errorf("after logging in again the connection is %+v", c)
	}
	waitFor(t, "the new sign-in's token in the workspace", 10*time.Second, func() (bool, error) {
		e, _ := workspaceAuth(t, docker, chatgpt.ID, "openai")
		return e.Access != stale.Access && srv.ActiveAccessToken(e.Access), fmt.Errorf("not the new token")
	})
	waitWorkflowStatus(t, tc, "oauth-refresh:"+adminID+":openai", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, 10*time.Second) // a new openai refresher

	// Disconnecting GitHub Copilot cancels its refresher and empties the project's entry.
	recordHistory(t, stack, "oauth-login:"+adminID+":github-copilot", "oauth_login.json")
	recordHistory(t, stack, "oauth-refresh:"+adminID+":github-copilot", "oauth_refresh.json")
	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/connections/github-copilot", nil); status != http.StatusAccepted {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	waitWorkflowStatus(t, tc, "oauth-refresh:"+adminID+":github-copilot", enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, 30*time.Second) // github-copilot refresher cancelled
	waitFor(t, "github-copilot gone from the workspace", 30*time.Second, func() (bool, error) {
		_, ok := workspaceAuth(t, docker, copilot.ID, "github-copilot")
		return !ok, fmt.Errorf("still in auth.json")
	})

	// The refreshes are counted for operators.
	mresp, err := http.Get(doce.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`doce_oauth_refreshes_total{outcome="refreshed",provider="openai"}`, `doce_oauth_refreshes_total{outcome="revoked",provider="openai"} 1`,
		`doce_oauth_logins_total{outcome="denied",provider="openai"} 1`, `doce_oauth_logins_total{outcome="connected",provider="openai"} 2`} {
		if !bytes.Contains(metricsText, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// No token anywhere doce keeps or says things.
	seenTokens = append(seenTokens, refresh)
	histories := workflowHistory(t, stack, "oauth-login:"+adminID+":github-copilot") +
		workflowHistory(t, stack, "oauth-login:"+adminID+":openai") +
		workflowHistory(t, stack, "oauth-refresh:"+adminID+":github-copilot") +
		workflowHistory(t, stack, "oauth-refresh:"+adminID+":openai")
	dbFiles := ""
	for _, f := range []string{"doce.db", "doce.db-wal", "doce.db-shm"} {
		b, _ := os.ReadFile(filepath.Join(doce.DataDir, f))
		dbFiles += string(b)
	}
	for i, tok := range seenTokens {
		for where, text := range map[string]string{"the database": dbFiles, "doce's logs": doce.Logs.String(),
			"an HTTP response": hc.responses(), "a workflow history": histories} {
			if strings.Contains(text, tok) {
				t.Errorf("token %d is in %s", i, where)
			}
		}
	}
	if !strings.Contains(histories, "oauth.deviceWait") || !strings.Contains(histories, "oauth.refresh") {
		t.Errorf("the histories look empty (%d bytes)", len(histories))
	}
}

// holdsAcceptedToken reports whether the provider accepts the token the workspace held (e).
// A token read while its replacement was between the provider, which revokes the token it
// replaces, and the workspace (a push retried once takes a second or two) gets a few more
// looks: the workspace must hold an accepted token again well before this test's tokens
// (12 s) would expire.
func holdsAcceptedToken(t *testing.T, docker *dockerclient.Client, srv *oauthtest.Server, projectID, provider string, e authEntry) bool {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if srv.ActiveAccessToken(e.Access) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		e, _ = workspaceAuth(t, docker, projectID, provider)
	}
}

// storedRefreshToken opens the connection's refresh token with Vault, as only doce's worker
// would: the test plays the provider, which knows its own tokens.
func storedRefreshToken(t *testing.T, stack stackEnv, doce *doceProcess, userID, provider string) string {
	t.Helper()
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := st.Connection(context.Background(), userID, provider)
	if err != nil {
		t.Fatal(err)
	}
	transit, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", "doce-credentials", 2)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := transit.Decrypt(context.Background(), c.OAuthRefreshCiphertext, secrets.ConnectionContext(userID, provider, secrets.FieldOAuthRefresh))
	if err != nil {
		t.Fatal(err)
	}
	return string(pt)
}

// waitWorkflowStatus waits until the workflow's latest run has status want.
func waitWorkflowStatus(t *testing.T, tc client.Client, workflowID string, want enumspb.WorkflowExecutionStatus, timeout time.Duration) {
	t.Helper()
	waitFor(t, workflowID+" "+want.String(), timeout, func() (bool, error) {
		d, err := tc.DescribeWorkflow(context.Background(), workflowID, "")
		if err != nil {
			return false, err
		}
		st := d.RawResponse.GetWorkflowExecutionInfo().GetStatus()
		return st == want, fmt.Errorf("status %s", st)
	})
}

func temporalClient(t *testing.T, stack stackEnv) client.Client {
	t.Helper()
	tc, err := client.Dial(temporalOptions(t, stack))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tc.Close)
	return tc
}

// holdingProxy stands between doce and the authorization server and can hold the token
// requests of one grant type, so a test can kill the worker while one is in flight. A held
// request whose sender died is dropped, as the provider would never see it.
type holdingProxy struct {
	URL   string
	mu    sync.Mutex
	grant string        // hold token requests of this grant type
	held  chan struct{} // a value per request held
	let   chan struct{} // closed: let held requests go on
}

func startHoldingProxy(t *testing.T, target string) *holdingProxy {
	t.Helper()
	u, _ := url.Parse(target)
	hp := &holdingProxy{held: make(chan struct{}, 16)}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		hp.mu.Lock()
		hold, let := hp.grant != "" && form.Get("grant_type") == hp.grant, hp.let
		hp.mu.Unlock()
		if hold {
			hp.held <- struct{}{}
			select {
			case <-let:
			case <-r.Context().Done():
				return // the worker died holding it: the provider never sees it
			}
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hp.URL = "http://" + ln.Addr().String()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return hp
}

func (hp *holdingProxy) hold(grant string) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	hp.grant, hp.let = grant, make(chan struct{})
}

func (hp *holdingProxy) release() {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.let != nil {
		close(hp.let)
	}
	hp.grant, hp.let = "", nil
}

// TestOAuthWorkerKilledMidLoginAndMidRefresh kills the worker while a sign-in polls and
// while a refresh is at the provider: each completes once on the next worker.
func TestOAuthWorkerKilledMidLoginAndMidRefresh(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	srv := startAuthServer(t)
	proxy := startHoldingProxy(t, srv.URL())
	doce := startDoceSplit(t, stack, fmt.Sprintf("e2e-oauth-kill-%d", time.Now().UnixNano()), oauthEnv(proxy.URL)...)
	hc := admin(t, doce, "sk-e2e-oauth-kill")
	adminID := mustUserID(t, doce, "admin")

	// Mid-login: the worker dies while it polls; the next one polls the same code.
	start := time.Now()
	l := startLogin(t, hc, doce, "openai", nil)
	doce.kill9(t, "worker")
	doce.start(t, "worker")
	if err := srv.Approve(l.UserCode); err != nil {
		t.Fatal(err)
	}
	waitLogin(t, hc, doce, "openai", "connected")
	t.Logf("killed mid-login: connected %s after start", time.Since(start).Round(100*time.Millisecond))

	p := createProjectOn(t, hc, doce, "openai", "gpt-5", "oauth kill project")
	waitStatus(t, hc, doce, p.ID, "ready", 2*time.Minute)
	first, _ := workspaceAuth(t, docker, p.ID, "openai")

	// Mid-refresh: the refresh request is held at the provider's door when the worker dies.
	proxy.hold("refresh_token")
	select {
	case <-proxy.held:
	case <-time.After(2 * tokenLife):
		t.Fatal("no refresh within three token lives")
	}
	start = time.Now()
	doce.kill9(t, "worker")
	proxy.release()
	doce.start(t, "worker")
	var next authEntry
	waitFor(t, "the refreshed token in the workspace", time.Minute, func() (bool, error) {
		next, _ = workspaceAuth(t, docker, p.ID, "openai")
		return next.Access != first.Access, fmt.Errorf("still the first token")
	})
	t.Logf("killed mid-refresh: the new token reached the workspace %s later", time.Since(start).Round(100*time.Millisecond))
	if !srv.ActiveAccessToken(next.Access) {
		t.Error("the pushed token is not accepted by the provider")
	}
	if c, _ := connectionOf(t, hc, doce, "openai"); c.Status != "connected" {
		t.Errorf("after the kill the connection is %+v", c)
	}

	// One connection, created once.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.AuditEventsByActor(context.Background(), adminID, 100)
	if err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, e := range evs {
		if e.Action == "connection.create" && e.TargetID == "openai" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("the openai connection was created %d times", creates)
	}
}
