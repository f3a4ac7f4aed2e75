package activities

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/workspace"
)

// The activities' tests run against a real SQLite store in a temporary folder, a cipher that
// binds each ciphertext to its context as Transit does, a workspace that is only told what
// runs, and an HTTP server answering the parts of OpenCode's API the activities call.

func openStore(t *testing.T) *store.Store {
	t.Helper()
	return storetest.Open(t, storetest.SQLite)
}

// fakeCipher seals "vault:vN:<context>:<plaintext>" (both base64) and opens a ciphertext only
// under the context it was sealed with, and only while its version is not retired.
type fakeCipher struct {
	mu         sync.Mutex
	latest     int
	minVersion int
	refused    int           // decrypts answered with secrets.ErrUndecryptable
	slow       time.Duration // how long Info takes, as when Vault restarts
}

func newFakeCipher() *fakeCipher { return &fakeCipher{latest: 1, minVersion: 1} }

func sealAt(version int, keyContext, plaintext string) string {
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("vault:v%d:%s:%s", version, enc([]byte(keyContext)), enc([]byte(plaintext)))
}

// seal is what Encrypt returns for plaintext under keyContext now.
func (c *fakeCipher) seal(keyContext, plaintext string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sealAt(c.latest, keyContext, plaintext)
}

func (c *fakeCipher) Encrypt(_ context.Context, plaintext []byte, keyContext string) (string, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sealAt(c.latest, keyContext, string(plaintext)), c.latest, nil
}

func (c *fakeCipher) Decrypt(_ context.Context, ciphertext, keyContext string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open(ciphertext, keyContext)
}

func (c *fakeCipher) open(ciphertext, keyContext string) ([]byte, error) {
	parts := strings.Split(ciphertext, ":")
	if len(parts) != 4 {
		return nil, fmt.Errorf("fake cipher: malformed ciphertext %q", ciphertext)
	}
	bound, _ := base64.StdEncoding.DecodeString(parts[2])
	pt, _ := base64.StdEncoding.DecodeString(parts[3])
	if string(bound) != keyContext || secrets.KeyVersion(ciphertext) < c.minVersion {
		c.refused++
		return nil, fmt.Errorf("%w: cipher: message authentication failed", secrets.ErrUndecryptable)
	}
	return pt, nil
}

func (c *fakeCipher) Info(context.Context) (secrets.KeyInfo, error) {
	time.Sleep(c.slow)
	c.mu.Lock()
	defer c.mu.Unlock()
	return secrets.KeyInfo{LatestVersion: c.latest, MinDecryptionVersion: c.minVersion}, nil
}

func (c *fakeCipher) Rewrap(_ context.Context, items []secrets.Sealed) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(items))
	for i, it := range items {
		pt, err := c.open(it.Ciphertext, it.Context)
		if err != nil {
			return nil, err
		}
		out[i] = sealAt(c.latest, it.Context, string(pt))
	}
	return out, nil
}

func (c *fakeCipher) SetMinDecryptionVersion(_ context.Context, v int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.minVersion = v
	return nil
}

// fakeWorkspace is a workspace that runs when told to; it makes no container. Docker's
// answer about it is seen: running or not, and, when set, where it is published and how
// it last exited. A start publishes it on startsOn.
type fakeWorkspace struct {
	mu       sync.Mutex
	running  bool
	pooled   bool
	seen     workspace.Container
	startsOn int
	starts   int
}

func (w *fakeWorkspace) Inspect(context.Context, string) (workspace.Container, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.seen
	c.Exists, c.Running = true, w.running
	return c, nil
}

// Accepts dials the port as the real one does: a fake's ports are loopback listeners.
func (w *fakeWorkspace) Accepts(ctx context.Context, _ string, hostPort int) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
	if err != nil {
		return err
	}
	return conn.Close()
}

func (w *fakeWorkspace) Start(context.Context, string) (workspace.Workspace, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.startsOn == 0 {
		return workspace.Workspace{}, errors.New("fake workspace: no start expected")
	}
	w.starts++
	w.running = true
	w.seen.HostPort = w.startsOn
	return workspace.Workspace{HostPort: w.startsOn}, nil
}

func (w *fakeWorkspace) ClaimCPU(context.Context, string) error { return nil }

func (w *fakeWorkspace) Stop(context.Context, string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running = false
	return nil
}

func (w *fakeWorkspace) Pooled(context.Context, string) (bool, string, error) {
	return w.pooled, "", nil
}

func (w *fakeWorkspace) ReplaceConfig(_ context.Context, _ string, _ func([]byte) bool, to []byte) ([]byte, bool, error) {
	return to, true, nil
}

// fakeOpenCode answers OpenCode's session, message, prompt and auth routes from memory and
// counts every request by its route ("POST /session").
type fakeOpenCode struct {
	t        *testing.T
	password string
	srv      *httptest.Server

	mu       sync.Mutex
	calls    map[string]int
	sessions []opencode.Session // most recently updated first, as OpenCode lists them
	messages map[string][]opencode.Message
	auths    []opencode.Auth // PUT /auth bodies, in order
	prompts  []promptBody

	// Hooks run inside the request, before it is answered.
	beforeCreateSession func()
	beforePrompt        func()
	beforeAuth          func(n int) // n: this PUT's number, from 1
}

type promptBody struct {
	Model opencode.Model `json:"model"`
	Parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	} `json:"parts"`
}

func newFakeOpenCode(t *testing.T, password string) *fakeOpenCode {
	f := &fakeOpenCode{t: t, password: password, calls: map[string]int{}, messages: map[string][]opencode.Message{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /global/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, opencode.Health{Healthy: true, Version: "fake"})
	})
	mux.HandleFunc("GET /session", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, f.sessions)
	})
	mux.HandleFunc("POST /session", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Title string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		if f.beforeCreateSession != nil {
			f.beforeCreateSession()
		}
		s := opencode.Session{ID: fmt.Sprintf("ses_%d", len(f.sessions)+1), Title: body.Title}
		f.sessions = append([]opencode.Session{s}, f.sessions...)
		writeJSON(w, s)
	})
	mux.HandleFunc("GET /session/{id}/message", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, f.messages[r.PathValue("id")])
	})
	mux.HandleFunc("POST /session/{id}/prompt_async", func(w http.ResponseWriter, r *http.Request) {
		var body promptBody
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if f.beforePrompt != nil {
			f.beforePrompt()
		}
		id := r.PathValue("id")
		f.prompts = append(f.prompts, body)
		f.messages[id] = append(f.messages[id], opencode.Message{Info: opencode.MessageInfo{ID: "msg_user", SessionID: id, Role: "user"}})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /auth/{id}", func(w http.ResponseWriter, r *http.Request) {
		var a opencode.Auth
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.auths = append(f.auths, a)
		if f.beforeAuth != nil {
			f.beforeAuth(len(f.auths))
		}
		writeJSON(w, true)
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pw, ok := r.BasicAuth(); !ok || user != "opencode" || pw != f.password {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, pattern := mux.Handler(r)
		f.mu.Lock()
		defer f.mu.Unlock() // one request at a time, as the activities make them
		f.calls[pattern]++
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// port is where the server listens on 127.0.0.1: a project's host port.
func (f *fakeOpenCode) port() int { return f.srv.Listener.Addr().(*net.TCPAddr).Port }

// count is how many requests the route has had.
func (f *fakeOpenCode) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[route]
}

// rig is one user with one project whose workspace is the fake OpenCode server, and the
// OpenCode activities wired to the fakes.
type rig struct {
	ctx    context.Context
	st     *store.Store
	cipher *fakeCipher
	ws     *fakeWorkspace
	oc     *fakeOpenCode
	acts   *OpenCode
	env    *testsuite.TestActivityEnvironment
	user   *store.User
}

const serverPassword = "server-password"

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{ctx: context.Background(), st: openStore(t), cipher: newFakeCipher(), ws: &fakeWorkspace{running: true},
		oc: newFakeOpenCode(t, serverPassword)}
	r.acts = &OpenCode{Store: r.st, Secrets: r.cipher, Workspace: r.ws,
		Agent: &agent.Connector{Secrets: r.cipher, Host: "127.0.0.1", HTTP: r.oc.srv.Client()}}
	var s testsuite.WorkflowTestSuite
	r.env = s.NewTestActivityEnvironment()
	r.env.RegisterActivity(r.acts)
	r.user = &store.User{Username: "owner", PasswordHash: "h", Role: store.RoleUser}
	if err := r.st.CreateUser(r.ctx, r.user); err != nil {
		t.Fatal(err)
	}
	return r
}

// project makes a project on providerID whose workspace listens at the fake server, with its
// server password sealed to it.
func (r *rig) project(t *testing.T, providerID, modelID string) *store.Project {
	t.Helper()
	p := &store.Project{OwnerUserID: r.user.ID, Name: "Demo", Slug: "demo", Prompt: "Build a to-do app", ProviderID: providerID, ModelID: modelID}
	if _, _, err := r.st.CreateProject(r.ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.st.SetProjectPasswordOnce(r.ctx, p.ID, r.cipher.seal(secrets.ProjectContext(p.ID, agent.FieldServerPassword), serverPassword)); err != nil {
		t.Fatal(err)
	}
	if err := r.st.RecordContainer(r.ctx, p.ID, "c1", "doce-"+p.ID+"-opencode", r.oc.port(), 0); err != nil {
		t.Fatal(err)
	}
	return r.reload(t, p.ID)
}

func (r *rig) reload(t *testing.T, projectID string) *store.Project {
	t.Helper()
	p, err := r.st.Project(r.ctx, projectID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// connField seals plaintext as the owner's providerID connection field.
func (r *rig) connField(providerID, field, plaintext string) string {
	return r.cipher.seal(secrets.ConnectionContext(r.user.ID, providerID, field), plaintext)
}

// oauthConnection stores a finished OpenAI sign-in with the token pair given.
func (r *rig) oauthConnection(t *testing.T, access, refresh string) {
	t.Helper()
	exp := time.Now().UTC().Add(time.Hour)
	c := &store.ProviderConnection{UserID: r.user.ID, ProviderID: "openai", OAuthExpiresAt: &exp,
		OAuthAccessCiphertext:  r.connField("openai", secrets.FieldOAuthAccess, access),
		OAuthRefreshCiphertext: r.connField("openai", secrets.FieldOAuthRefresh, refresh)}
	if err := r.st.SaveOAuthConnection(r.ctx, c); err != nil {
		t.Fatal(err)
	}
}

// refreshStored does what a token refresh does to the stored OpenAI sign-in: a new pair,
// a later expiry.
func (r *rig) refreshStored(t *testing.T, access, refresh string) {
	c, err := r.st.Connection(r.ctx, r.user.ID, "openai")
	if err != nil {
		t.Error(err)
		return
	}
	old := *c.OAuthExpiresAt
	next := old.Add(time.Hour)
	c.OAuthAccessCiphertext = r.connField("openai", secrets.FieldOAuthAccess, access)
	c.OAuthRefreshCiphertext = r.connField("openai", secrets.FieldOAuthRefresh, refresh)
	c.OAuthExpiresAt = &next
	if ok, err := r.st.UpdateOAuthTokens(r.ctx, c, old); err != nil || !ok {
		t.Errorf("refresh in the store: stored=%v err=%v", ok, err)
	}
}
