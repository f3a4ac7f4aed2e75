package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"

	"github.com/doce-dev/doce/store"
)

// TestHostileInputOnTheRealStack re-runs the kinds of hostile input the outside test sent (NUL
// bytes, invalid UTF-8, long text, path tricks, markup) against a running doce on the real
// Temporal and Vault, signed in and signed out, on every route that takes text, and counts the
// status codes: none may be 5xx. The workspace image is missing, so the projects that valid text
// creates stop at their first step instead of starting containers.
func TestHostileInputOnTheRealStack(t *testing.T) {
	stack := requireStack(t)
	missing := fmt.Sprintf("doce/opencode-e2e-missing:%d", time.Now().UnixNano())
	doce := startDoce(t, stack, fmt.Sprintf("e2e-hostile-%d", time.Now().UnixNano()), "DOCE_OPENCODE_IMAGE="+missing)
	t.Cleanup(func() { dockerClient(t).ImageRemove(context.Background(), missing, image.RemoveOptions{}) })
	hc := admin(t, doce, "sk-e2e-hostile")
	own := createProject(t, hc, doce, "a project to aim at")

	values := []string{"\x00", "a\x00b", "%00", "\xff\xfe", "\xc3\x28", strings.Repeat("x", 300), strings.Repeat("é", 5000),
		"../../etc/passwd", "..%2f..%2f", "' OR 1=1 --", "<script>alert(1)</script>", "\u202e", " ", "{{.}}", own.ID + "\x00"}
	type route struct{ method, path, form, json string }
	routes := []route{
		{"POST", "/login", "username", ""}, {"POST", "/login", "password", ""}, {"POST", "/setup", "username", ""},
		{"GET", "/api/v1/projects/{v}", "", ""}, {"POST", "/api/v1/projects/{v}/retry", "", ""}, {"POST", "/api/v1/projects/{v}/cancel", "", ""},
		{"DELETE", "/api/v1/projects/{v}", "", ""}, {"GET", "/projects/{v}", "", ""}, {"GET", "/projects/{v}/events", "", ""},
		{"POST", "/projects/{v}/retry", "", ""}, {"POST", "/projects/{v}/cancel", "", ""}, {"POST", "/projects/{v}/delete", "", ""},
		{"DELETE", "/api/v1/connections/{v}", "", ""}, {"POST", "/settings/providers/{v}/disconnect", "", ""},
		{"POST", "/settings/providers/{v}/preferred", "", ""}, {"GET", "/settings/providers/{v}/oauth", "", ""},
		{"POST", "/settings/providers/{v}/oauth", "", ""}, {"POST", "/api/v1/connections/oauth/{v}/start", "", ""},
		{"GET", "/api/v1/connections/oauth/{v}", "", ""}, {"PUT", "/api/v1/settings/preferred-provider", "", "preferredProviderId"},
		{"POST", "/api/v1/admin/users/{v}/disable", "", ""}, {"POST", "/admin/users/{v}/disable", "", ""},
		{"POST", "/api/v1/projects", "", "prompt"}, {"POST", "/api/v1/projects", "", "name"}, {"POST", "/api/v1/projects", "", "modelId"},
		{"POST", "/projects", "prompt", ""}, {"POST", "/settings/providers", "baseURL", ""}, {"POST", "/api/v1/connections", "", "wellKnownUrl"},
		{"POST", "/api/v1/connections", "", "apiKey"}, {"POST", "/admin/users", "username", ""}, {"POST", "/api/v1/admin/users", "", "username"},
		{"POST", "/api/v1/ops/setups/retry", "", "projectIds"}, {"POST", "/ops/cancel", "projectId", ""},
		{"POST", "/api/v1/admin/lockouts/clear", "", "subject"}, {"POST", "/account", "currentPassword", ""},
		{"GET", "/api/v1/projects/{v}/changes", "", ""}, {"GET", "/api/v1/projects/" + own.ID + "/messages/{v}/changes", "", ""},
		{"POST", "/api/v1/projects/" + own.ID + "/revert", "", "messageId"}, {"PATCH", "/api/v1/projects/" + own.ID + "/sessions/{v}", "", "title"},
		{"PUT", "/api/v1/projects/" + own.ID + "/terminals/{v}", "", "rows"}, {"GET", "/api/v1/projects/" + own.ID + "/terminals/{v}/connect", "", ""},
		{"GET", "/ops?failed={v}", "", ""}, {"GET", "/projects/" + own.ID + "?x={v}", "", ""}, {"HEAD", "/projects/{v}", "", ""},
		{"POST", "/api/v1/account/password", "", "currentPassword"}, {"POST", "/api/v1/account/tokens", "", "scope"},
		{"POST", "/api/v1/account/tokens", "", "name"}, {"GET", "/api/v1/projects/" + own.ID + "/files/content?path={v}", "", ""},
		{"GET", "/api/v1/projects/" + own.ID + "/files?path={v}", "", ""}, {"GET", "/api/v1/projects/" + own.ID + "/models?x={v}", "", ""},
		{"GET", "/api/v1/projects/{v}/egress", "", ""}, {"PUT", "/api/v1/projects/{v}/egress", "", "mode"},
		{"PUT", "/api/v1/projects/" + own.ID + "/egress", "", "mode"}, {"PUT", "/api/v1/projects/" + own.ID + "/egress", "", "allow"},
		{"POST", "/projects/" + own.ID + "/egress", "allow", ""}, {"POST", "/projects/{v}/egress", "mode", ""},
	}
	counts := map[int]int{}
	var fives []string
	send := func(c *http.Client, r route, v string) {
		path := strings.ReplaceAll(r.path, "{v}", url.PathEscape(v))
		if base, q, ok := strings.Cut(r.path, "?"); ok {
			k, _, _ := strings.Cut(q, "=")
			path = strings.ReplaceAll(base, "{v}", url.PathEscape(v)) + "?" + url.Values{k: {v}}.Encode()
		}
		var body io.Reader
		ct := ""
		switch {
		case r.form != "":
			f := url.Values{r.form: {v}}
			if r.form != "password" && r.form != "currentPassword" {
				f.Set("password", "correct horse battery")
			}
			body, ct = strings.NewReader(f.Encode()), "application/x-www-form-urlencoded"
		case r.json != "":
			var field any = v
			if r.json == "projectIds" || r.json == "allow" {
				field = []string{v}
			}
			in := map[string]any{r.json: field}
			if r.json == "apiKey" || r.json == "wellKnownUrl" {
				in["providerId"] = map[string]string{"apiKey": "custom", "wellKnownUrl": "wellknown"}[r.json]
				in["baseURL"], in["models"], in["token"] = "http://host.docker.internal:9/v1", "m", "tok"
			}
			b, _ := json.Marshal(in)
			body, ct = strings.NewReader(string(b)), "application/json"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, r.method, doce.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := c.Do(req)
		if err != nil {
			if strings.HasSuffix(r.path, "/events") && ctx.Err() != nil {
				counts[http.StatusOK]++ // a stream of the own project: it stays open
				return
			}
			t.Fatalf("%s %s: %v", r.method, path, err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		counts[resp.StatusCode]++
		if resp.StatusCode >= 500 {
			fives = append(fives, fmt.Sprintf("%s %s (%q): %d %.200s", r.method, r.path, v, resp.StatusCode, b))
		}
	}
	anonymous := newClient(t).Client
	for _, v := range values {
		for _, r := range routes {
			send(hc.Client, r, v)
			if r.path == "/login" || strings.HasPrefix(r.path, "/api/v1/projects/") {
				send(anonymous, r, v)
			}
		}
	}
	// The containment checks' own inputs: any Host (refused unless doce's own), any device or
	// session cookie, any bearer token on the account routes.
	do := func(c *http.Client, req *http.Request) {
		resp, err := c.Do(req)
		if err != nil {
			return // a value no HTTP client sends (the transport refuses it): nothing reached doce
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		counts[resp.StatusCode]++
		if resp.StatusCode >= 500 {
			fives = append(fives, fmt.Sprintf("%s %s %v: %d %.200s", req.Method, req.URL.Path, req.Header, resp.StatusCode, b))
		}
	}
	for _, v := range values {
		for _, path := range []string{"/setup", "/login", "/api/v1/projects"} {
			req, _ := http.NewRequest(http.MethodGet, doce.URL+path, nil)
			req.Host = v
			do(anonymous, req)
		}
		for _, cookie := range []string{"doce_device", "doce_session", "__Host-doce_session"} {
			for _, cv := range []string{v, url.QueryEscape(v)} {
				req, _ := http.NewRequest(http.MethodPost, doce.URL+"/login", strings.NewReader("username=admin&password=wrong+guess"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Cookie", cookie+"="+cv)
				do(anonymous, req)
				req, _ = http.NewRequest(http.MethodGet, doce.URL+"/projects", nil)
				req.Header.Set("Cookie", cookie+"="+cv)
				do(anonymous, req)
			}
		}
		for _, path := range []string{"/api/v1/admin/users", "/api/v1/account/password", "/api/v1/account/tokens"} {
			req, _ := http.NewRequest(http.MethodPost, doce.URL+path, strings.NewReader(`{"username":"mallory","password":"correct horse battery","admin":true}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+url.QueryEscape(v))
			do(anonymous, req)
		}
	}

	// An allow list past its bound, and one of a single host of 100 kB.
	for _, allow := range [][]string{make([]string, 101), {strings.Repeat("a.", 50<<10) + "org"}} {
		for i := range allow {
			if allow[i] == "" {
				allow[i] = fmt.Sprintf("h%d.example", i)
			}
		}
		status, body := apiCall(t, hc, doce.URL, "PUT", "/api/v1/projects/"+own.ID+"/egress", map[string]any{"mode": "allow-list", "allow": allow})
		counts[status]++
		if status != http.StatusBadRequest {
			t.Errorf("an allow list of %d hosts (%d bytes): %d %.200s, want 400", len(allow), len(allow[0]), status, body)
		}
	}
	// A 9.6 MB signed-out login and a 12 MB form: refused before they are parsed.
	for _, n := range []int{9600 << 10, 12 << 20} {
		resp, err := anonymous.PostForm(doce.URL+"/login", url.Values{"username": {strings.Repeat("A", n)}, "password": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		counts[resp.StatusCode]++
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(b) > 20<<10 {
			t.Errorf("%d-byte login: %d with %d bytes back, want 413 and a short page", n, resp.StatusCode, len(b))
		}
	}
	codes := []int{}
	total := 0
	for c, n := range counts {
		codes = append(codes, c)
		total += n
	}
	sort.Ints(codes)
	var summary []string
	for _, c := range codes {
		summary = append(summary, fmt.Sprintf("%d×%d", counts[c], c))
	}
	t.Logf("%d hostile requests: %s", total, strings.Join(summary, " "))
	if len(fives) > 0 {
		t.Errorf("%d answers were 5xx:\n%s", len(fives), strings.Join(fives, "\n"))
	}
	if !strings.Contains(doce.Logs.String(), `"status":400`) {
		t.Error("no 400 in the logs: the requests did not reach the checks")
	}
	if counts[http.StatusMisdirectedRequest] == 0 {
		t.Error("no 421: the hostile Host headers did not reach the allow-list")
	}
	// Nothing was made or lost: one user, the admin, enabled, with no token and the password
	// it had; the own project still there.
	st := openStoreAt(t, doce)
	defer st.Close()
	us, err := st.Users(context.Background())
	if err != nil || len(us) != 1 || us[0].Username != "admin" || us[0].DisabledAt != nil {
		t.Errorf("users after the hostile input: %+v %v", us, err)
	}
	if ts, _ := st.APITokens(context.Background(), us[0].ID); len(ts) != 0 {
		t.Errorf("%d API tokens made by hostile input", len(ts))
	}
	if p := getProject(t, hc, doce, own.ID); p.ID != own.ID {
		t.Errorf("the own project is gone: %+v", p)
	}
	if ok, _, err := store.CheckPassword(us[0].PasswordHash, "correct horse battery"); !ok || err != nil {
		t.Errorf("the admin's password changed: %v", err)
	}
}
