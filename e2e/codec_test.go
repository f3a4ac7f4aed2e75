package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// payloadKey is the Transit key doce encrypts Temporal payloads under (DOCE_VAULT_PAYLOAD_KEY's
// default), on the test Vault every doce of the run shares.
const payloadKey = "doce-payloads"

// payloadCodec is the codec a doce on this stack uses: a test's Temporal client reads what doce
// wrote through it, as doce's own clients do.
func payloadCodec(t testing.TB, stack stackEnv) *secrets.PayloadCodec {
	t.Helper()
	tr, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", payloadKey, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return secrets.NewPayloadCodec(tr)
}

// temporalOptions are a test client's options: doce's codec, so queries, results and failures
// decode.
func temporalOptions(t testing.TB, stack stackEnv) client.Options {
	codec := payloadCodec(t, stack)
	return client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{},
		DataConverter: codec.DataConverter(), FailureConverter: codec.FailureConverter()}
}

// decodingOptions are client options whose gRPC calls decode every payload in an answer through
// doce's codec: GetWorkflowHistory then returns the history as a person with the codec
// endpoint sees it.
func decodingOptions(t testing.TB, stack stackEnv) client.Options {
	t.Helper()
	icpt, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{
		Codecs: []converter.PayloadCodec{payloadCodec(t, stack)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{},
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(icpt)}}}
}

// fetchHistory returns a run's events through a client made with opts.
func fetchHistory(t testing.TB, opts client.Options, workflowID string) *historypb.History {
	t.Helper()
	tc, err := client.Dial(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	it := tc.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	return hist
}

func wire(t testing.TB, m proto.Message) string {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestWorkflowPayloadsEncrypted runs a setup and reads its history as `temporal workflow show`
// would without the codec: no prompt, project name or user name in clear, nor the key. The
// codec endpoint decodes the same payloads for an admin, and refuses a user, a signed-out
// caller and a foreign origin; the Temporal UI's origin gets CORS. The encrypted history still
// replays.
func TestWorkflowPayloadsEncrypted(t *testing.T) {
	stack := requireStack(t)
	const uiOrigin = "http://127.0.0.1:18233"
	doce := startDoce(t, stack, fmt.Sprintf("e2e-codec-%d", time.Now().UnixNano()), "DOCE_TEMPORAL_UI_URL="+uiOrigin+"/")
	mark := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	key := "sk-codec-" + mark
	adminClient := admin(t, doce, "sk-admin-"+mark)

	// A user with a name worth hiding makes a project with a prompt and name worth hiding.
	username, password := "margaret-"+mark, "correct horse battery"
	if status, body := apiCall(t, adminClient, doce.URL, "POST", "/api/v1/admin/users", map[string]any{"username": username, "password": password}); status != http.StatusCreated {
		t.Fatalf("create user: %d %s", status, body)
	}
	user := newClient(t)
	if resp, err := user.PostForm(doce.URL+"/login", url.Values{"username": {username}, "password": {password}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("user login: %v", err)
	}
	if status, body := apiCall(t, user, doce.URL, "POST", "/api/v1/connections",
		map[string]any{"providerId": "custom", "apiKey": key, "baseURL": "http://host.docker.internal:9/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}
	prompt := "Write the launch plan for Operation Bluebird " + mark
	name := "Bluebird Launch " + mark
	status, body := apiCall(t, user, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": prompt, "name": name, "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create project: %d %s", status, body)
	}
	var created struct{ Project projectState }
	json.Unmarshal(body, &created)
	p := created.Project
	// Past its first step the run's history holds its input, memo, step results and failures;
	// whether OpenCode is up yet does not matter here (on a loaded machine it may take minutes).
	waitFor(t, "setup past docker.composeUp", 3*time.Minute, func() (bool, error) {
		got := getProject(t, user, doce, p.ID)
		return got.Status == "ready" || got.SetupStep != "" && got.SetupStep != "docker.composeUp",
			fmt.Errorf("status %s at %q", got.Status, got.SetupStep)
	})
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	proj, err := st.Project(context.Background(), p.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The history without the codec: ciphertext only.
	plain := client.Options{HostPort: stack.TemporalAddress, Logger: quietLogger{}}
	raw := fetchHistory(t, plain, p.WorkflowID)
	rawWire, rawJSON := wire(t, raw), protojson.Format(raw)
	clear := []string{prompt, name, username, key, proj.Slug}
	for _, s := range clear {
		if strings.Contains(rawWire, s) || strings.Contains(rawJSON, s) {
			t.Errorf("%q is in the workflow history in clear", s)
		}
	}
	if !strings.Contains(rawJSON, base64Of(secrets.PayloadEncoding)) || !strings.Contains(rawWire, workflows.ActWaitHealthy) {
		t.Fatalf("the history has no encrypted payloads, or no steps (%d events)", len(raw.Events))
	}

	// Its payloads, as the Temporal UI collects them.
	var payloads []*commonpb.Payload
	if err := proxy.VisitPayloads(context.Background(), raw, proxy.VisitPayloadsOptions{
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			payloads = append(payloads, ps...)
			return ps, nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	reqBody, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(hc *http.Client, headers map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, doce.URL+"/codec/decode", bytes.NewReader(reqBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp, b.String()
	}
	fromUI := map[string]string{"Origin": uiOrigin, "Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "cors"}

	// An admin (here through the UI's origin, as the browser sends it) gets them decoded.
	resp, out := decode(adminClient.Client, fromUI)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != uiOrigin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("admin decode from the UI: %d (CORS %q) %.300s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), out)
	}
	var decoded commonpb.Payloads
	if err := protojson.Unmarshal([]byte(out), &decoded); err != nil || len(decoded.Payloads) != len(payloads) {
		t.Fatalf("decoded %d of %d payloads: %v", len(decoded.Payloads), len(payloads), err)
	}
	var clearText strings.Builder
	for _, dp := range decoded.Payloads {
		if string(dp.Metadata[converter.MetadataEncoding]) == secrets.PayloadEncoding {
			t.Fatal("a payload came back still encrypted")
		}
		clearText.Write(dp.Data)
	}
	if !strings.Contains(clearText.String(), name) {
		t.Errorf("the decoded payloads lack the project's name (the memo): %.500s", clearText.String())
	}
	if strings.Contains(clearText.String(), key) {
		t.Error("the provider key is in the decoded history")
	}
	// And from the command line (no Origin), as `temporal workflow show --codec-endpoint` would.
	if resp, _ := decode(adminClient.Client, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("admin decode without an Origin: %d", resp.StatusCode)
	}

	// Everyone else is refused.
	for _, tc := range []struct {
		who     string
		hc      *http.Client
		headers map[string]string
		want    int
	}{
		{"signed out", &http.Client{}, fromUI, http.StatusUnauthorized},
		{"a user who is not an admin", user.Client, fromUI, http.StatusForbidden},
		{"an admin's cookie from a foreign origin", adminClient.Client, map[string]string{"Origin": "http://evil.test", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	} {
		resp, out := decode(tc.hc, tc.headers)
		if resp.StatusCode != tc.want || strings.Contains(out, name) {
			t.Errorf("%s: %d, want %d and nothing decoded", tc.who, resp.StatusCode, tc.want)
		}
	}
	// The preflight: the UI's origin may, another may not.
	for origin, want := range map[string]string{uiOrigin: uiOrigin, "http://evil.test": ""} {
		req, _ := http.NewRequest(http.MethodOptions, doce.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want || resp.StatusCode >= 300 {
			t.Errorf("preflight from %s: %d, Allow-Origin %q, want %q", origin, resp.StatusCode, got, want)
		}
	}

	// The same with the Temporal CLI: `temporal workflow show` prints ciphertext, and with doce's
	// codec endpoint and an admin's session the names in clear.
	temporalBin := requireBin(t, "DOCE_TEST_TEMPORAL_BIN")
	u, _ := url.Parse(doce.URL)
	var cookie string
	for _, c := range adminClient.Jar.Cookies(u) {
		if c.Name == "doce_session" {
			cookie = c.Value
		}
	}
	show := func(extra ...string) string {
		t.Helper()
		args := append([]string{"workflow", "show", "--address", stack.TemporalAddress, "-w", p.WorkflowID, "-o", "json"}, extra...)
		out, err := exec.Command(temporalBin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("temporal %s: %v\n%.2000s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	plainShow := show()
	for _, s := range clear {
		if strings.Contains(plainShow, s) {
			t.Errorf("temporal workflow show prints %q", s)
		}
	}
	// The CLI prints payload data as base64: the memo's is the name as a JSON string.
	memo := base64.StdEncoding.EncodeToString([]byte(`"` + name + `"`))
	if strings.Contains(plainShow, memo) {
		t.Error("temporal workflow show prints the memo in clear")
	}
	if codecShow := show("--codec-endpoint", doce.URL+"/codec", "--codec-header", "Cookie=doce_session="+cookie); !strings.Contains(codecShow, memo) {
		t.Errorf("temporal workflow show with the codec endpoint lacks the project's name: %.1000s", codecShow)
	}

	// The encrypted history replays through the codec, as a worker replays it.
	codec := payloadCodec(t, stack)
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: codec.DataConverter(), FailureConverter: codec.FailureConverter(),
	})
	if err != nil {
		t.Fatal(err)
	}
	r.RegisterWorkflowWithOptions(workflows.ProjectSetup, workflow.RegisterOptions{Name: "ProjectSetup"})
	if err := r.ReplayWorkflowHistory(nil, raw); err != nil {
		t.Errorf("replaying the encrypted history: %v", err)
	}
}

func base64Of(s string) string {
	b, _ := json.Marshal([]byte(s)) // a JSON string of the base64, as protojson writes bytes
	return strings.Trim(string(b), `"`)
}
