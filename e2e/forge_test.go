package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// TestForgeConnectGitea connects a real Gitea: a wrong token, the wrong kind of forge and a
// Gitea that is not there are each a 400 naming the field to fix; the administrator's token
// connects and shows the Gitea account; a second connection is refused; disconnecting forgets
// it. The token is in no answer, no log line and no database file, only as Vault Transit
// ciphertext bound to its row.
func TestForgeConnectGitea(t *testing.T) {
	stack := requireStack(t)
	g := requireGitea(t)
	keyName := fmt.Sprintf("forge-%d", time.Now().UnixNano())
	doce := startDoce(t, stack, "e2e-"+keyName, "DOCE_VAULT_TRANSIT_KEY="+keyName)
	hc := newClient(t)
	resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}

	// Refusals first: none of them stores anything.
	wrong := strings.Repeat("0", 40)
	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": wrong})
	expectField(t, "wrong token", status, body, "token", "refused this token")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "github", "baseURL": g.URL, "token": g.Token})
	expectField(t, "a Gitea connected as GitHub Enterprise", status, body, "baseURL", "No GitHub API answered")
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": "http://127.0.0.1:" + freePort(t), "token": g.Token})
	expectField(t, "nothing listening", status, body, "baseURL", "Could not reach Gitea")

	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL + "/", "token": g.Token})
	var created struct {
		Forge struct{ ID, Kind, ForgeName, BaseURL, Account, DisplayHint string }
	}
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusCreated {
		t.Fatalf("connect with the admin token: %d %s", status, body)
	}
	f := created.Forge
	if f.Account != g.Admin || f.Kind != "gitea" || f.ForgeName != "Gitea" || f.BaseURL != g.URL || f.DisplayHint != "…"+g.Token[len(g.Token)-4:] {
		t.Errorf("connected forge: %+v", f)
	}
	status, body = apiCall(t, hc, doce.URL, "POST", "/api/v1/forges", map[string]any{"kind": "gitea", "baseURL": g.URL, "token": g.Token})
	if status != http.StatusConflict {
		t.Errorf("second connection: %d %s, want 409", status, body)
	}
	status, body = apiCall(t, hc, doce.URL, "GET", "/api/v1/forges", nil)
	if status != http.StatusOK || !strings.Contains(string(body), `"account":"`+g.Admin+`"`) {
		t.Errorf("list: %d %s", status, body)
	}
	resp, err = hc.Get(doce.URL + "/settings/forges")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(g.Admin)) || !bytes.Contains(page, []byte(g.URL)) {
		t.Errorf("forges page: %d\n%s", resp.StatusCode, page)
	}
	if _, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/audit", nil); !strings.Contains(string(body), `"action":"forge.connect"`) {
		t.Errorf("audit: %s", body)
	}

	// Stored as ciphertext bound to this row: it opens for it and for no other.
	st, err := store.Open(doce.Database)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.ForgeConnectionsPage(context.Background(), "", 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("forge rows: %+v %v", rows, err)
	}
	transit, err := secrets.NewTransit(stack.VaultAddr, stack.VaultToken, "transit", keyName, 2)
	if err != nil {
		t.Fatal(err)
	}
	row := rows[0]
	if pt, err := transit.Decrypt(context.Background(), row.TokenCiphertext, secrets.ForgeContext(row.UserID, row.ID)); err != nil || string(pt) != g.Token {
		t.Errorf("the stored ciphertext does not open to the token: %v", err)
	}
	if _, err := transit.Decrypt(context.Background(), row.TokenCiphertext, secrets.ForgeContext(row.UserID, store.NewID())); !errors.Is(err, secrets.ErrUndecryptable) {
		t.Errorf("the ciphertext opens for another row: %v", err)
	}

	if status, body := apiCall(t, hc, doce.URL, "DELETE", "/api/v1/forges/"+f.ID, nil); status != http.StatusNoContent {
		t.Fatalf("disconnect: %d %s", status, body)
	}
	if status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/forges", nil); status != http.StatusOK || strings.TrimSpace(string(body)) != `{"forges":[]}` {
		t.Errorf("list after disconnecting: %d %s", status, body)
	}

	for where, text := range map[string]string{"an answer": hc.responses(), "doce's log": doce.Logs.String()} {
		if strings.Contains(text, g.Token) || strings.Contains(text, wrong) {
			t.Errorf("a token is in %s", where)
		}
	}
	for _, name := range []string{"doce.db", "doce.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(doce.DataDir, name))
		if bytes.Contains(b, []byte(g.Token)) {
			t.Errorf("the token is in %s", name)
		}
	}
}

// expectField checks an answer is a 400 about field saying msg.
func expectField(t *testing.T, what string, status int, body []byte, field, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal(body, &e)
	if status != http.StatusBadRequest || e.Error.Field != field || !strings.Contains(e.Error.Message, msg) {
		t.Errorf("%s: %d %s; want 400 on %s saying %q", what, status, body, field, msg)
	}
}
