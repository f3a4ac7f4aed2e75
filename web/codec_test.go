package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/web"
)

// TestCodecEndpoint checks who may use /codec and from where. Payloads here are plaintext,
// which the codec passes through without Vault; e2e's TestWorkflowPayloadsEncrypted decodes
// real ones.
func TestCodecEndpoint(t *testing.T) {
	st := storetest.Open(t, storetest.SQLite)
	const ui = "http://ui.test:8233"
	s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Setups: &setups.Service{Store: st, Namespace: "default", UIURL: ui}, Payloads: secrets.NewPayloadCodec(nil), TemporalUIURL: ui + "/"}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	login := func(name, role string) *http.Client {
		hash, _ := bcrypt.GenerateFromPassword([]byte("password-"+name), bcrypt.MinCost)
		if err := st.CreateUser(context.Background(), &store.User{Username: name, PasswordHash: string(hash), Role: role}); err != nil {
			t.Fatal(err)
		}
		c := client()
		if resp, err := c.PostForm(srv.URL+"/login", url.Values{"username": {name}, "password": {"password-" + name}}); err != nil || resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login %s: %v", name, err)
		}
		return c
	}
	admin, user := login("root", store.RoleAdmin), login("alice", store.RoleUser)
	// {"payloads":[{"metadata":{"encoding":"json/plain"},"data":"ImhlbGxvIg=="}]}: "hello" as JSON.
	const body = `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"ImhlbGxvIg=="}]}`
	post := func(c *http.Client, path, origin, site, body string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Namespace", "default")
		if origin != "" {
			req.Header.Set("Origin", origin)
			req.Header.Set("Sec-Fetch-Site", site)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, read(t, resp)
	}
	for _, tc := range []struct {
		name         string
		c            *http.Client
		path, origin string
		site, body   string
		want         int
		cors         bool
	}{
		{"admin from the UI", admin, "/codec/decode", ui, "same-site", body, 200, true},
		{"admin without an Origin (CLI)", admin, "/codec/decode", "", "", body, 200, false},
		{"admin encode", admin, "/codec/encode", ui, "same-site", `{"payloads":[]}`, 200, true},
		{"signed out", client(), "/codec/decode", ui, "same-site", body, 401, true},
		{"not an admin", user, "/codec/decode", ui, "same-site", body, 403, true},
		{"foreign origin", admin, "/codec/decode", "http://evil.test", "cross-site", body, 403, false},
		{"not Payloads JSON", admin, "/codec/decode", ui, "same-site", `{"payloads":"x"}`, 400, true},
	} {
		resp, out := post(tc.c, tc.path, tc.origin, tc.site, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, out, tc.want)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == ui) != tc.cors {
			t.Errorf("%s: Access-Control-Allow-Origin %q", tc.name, got)
		}
		if tc.want == 200 && tc.path == "/codec/decode" && (!strings.Contains(out, `"data":"ImhlbGxvIg=="`) || resp.Header.Get("Cache-Control") != "no-store") {
			t.Errorf("%s: decoded %s", tc.name, out)
		}
	}
	// The preflight opens CORS to the UI's origin only.
	for origin, want := range map[string]string{ui: ui, "http://evil.test": ""} {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/codec/decode", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want || resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight from %s: %d %q, want 204 %q", origin, resp.StatusCode, got, want)
		}
	}
	// The bypass is the codec's alone: a form from the UI's origin is still refused.
	resp, _ := post(admin, "/admin/users", ui, "same-site", "")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST /admin/users from the UI's origin: %d, want 403", resp.StatusCode)
	}
}
