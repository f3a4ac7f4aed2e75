package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/hosts"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/web"
)

// A project on a host whose worker stopped says so, to its owner on the page and in the API;
// administrators see the host, list the hosts and drain one.
func TestProjectsShowTheirHostsState(t *testing.T) {
	st := storetest.Open(t, storetest.SQLite)
	s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Setups: &setups.Service{Store: st, Namespace: "default"}, Verifier: &providers.Verifier{}, Hosts: hosts.NewRegistry(st, nil)}
	h, err := s.Handler()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{srv: srv, store: st}
	ctx := context.Background()

	admin := client()
	if resp, _ := admin.PostForm(srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("setup: %d", resp.StatusCode)
	}
	alice := e.user(t, "alice")
	for _, name := range []string{"a", "b"} {
		if err := st.RegisterHost(ctx, &store.Host{Name: name, TaskQueue: "doce-host-" + name, HeartbeatSeconds: 1}); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := st.UserByUsername(ctx, "alice")
	p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.DB.NewUpdate().Model((*store.Project)(nil)).Set("host = 'b'").Where("id = ?", p.ID).Exec(ctx)

	project := func() map[string]any {
		t.Helper()
		resp, body := do(t, alice, "GET", srv.URL+"/api/v1/projects/"+p.ID, "", nil)
		var got struct{ Project map[string]any }
		if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("project: %d %s", resp.StatusCode, body)
		}
		return got.Project
	}
	if v := project(); v["hostState"] != "ready" || v["host"] != nil {
		t.Fatalf("project on a live host: %v; want hostState ready and no host name for its owner", v)
	}
	if err := st.HostStopped(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the web tier's list of hosts is up to a second old
	if v := project(); v["hostState"] != "unreachable" {
		t.Fatalf("project on a stopped host: %v, want hostState unreachable", v)
	}
	resp, _ := alice.Get(srv.URL + "/projects/" + p.ID)
	if body := read(t, resp); !strings.Contains(body, "Host unreachable") {
		t.Errorf("project page does not say its host is unreachable")
	}

	// Administrators: the hosts, their states, a drain.
	if resp, _ := do(t, alice, "GET", srv.URL+"/api/v1/ops/hosts", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin GET /api/v1/ops/hosts: %d", resp.StatusCode)
	}
	if resp, _ := do(t, alice, "POST", srv.URL+"/api/v1/ops/hosts/a/drain", "", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-admin drain: %d", resp.StatusCode)
	}
	if resp, body := do(t, admin, "POST", srv.URL+"/api/v1/ops/hosts/a/drain", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("drain: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, admin, "POST", srv.URL+"/api/v1/ops/hosts/nope/drain", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("draining an unknown host: %d, want 404", resp.StatusCode)
	}
	resp, body := do(t, admin, "GET", srv.URL+"/api/v1/ops/hosts", "", nil)
	var hosts struct {
		Hosts []struct {
			Name, State string
			Projects    int
		}
	}
	if err := json.Unmarshal([]byte(body), &hosts); err != nil || resp.StatusCode != http.StatusOK || len(hosts.Hosts) != 2 {
		t.Fatalf("hosts: %d %s", resp.StatusCode, body)
	}
	if a, b := hosts.Hosts[0], hosts.Hosts[1]; a.State != "drained" || b.State != "unreachable" || b.Projects != 1 {
		t.Errorf("hosts %+v, want a drained and b unreachable with 1 project", hosts.Hosts)
	}
	if evs, _ := st.AuditEvents(ctx, 10); len(evs) == 0 || evs[0].Action != "host.drain" || evs[0].TargetID != "a" {
		t.Errorf("audit %+v, want the drain", evs)
	}
}
