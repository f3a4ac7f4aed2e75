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

	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store/storetest"
	"github.com/doce-dev/doce/web"
	"github.com/doce-dev/doce/workspace"
)

// fakeCluster is a cluster of named nodes whose cordons the test reads back.
type fakeCluster map[string]bool

func (f fakeCluster) Nodes(context.Context) ([]workspace.Node, error) {
	var out []workspace.Node
	for name, cordoned := range f {
		out = append(out, workspace.Node{Name: name, Ready: true, Cordoned: cordoned})
	}
	return out, nil
}

func (f fakeCluster) Cordon(_ context.Context, name string, cordoned bool) error {
	if _, ok := f[name]; !ok {
		return workspace.ErrNoNode
	}
	f[name] = cordoned
	return nil
}

// On the Kubernetes backend administrators list the cluster's nodes and cordon one, from the
// API and the ops page's form (the page itself needs Temporal: e2e TestKubernetesWorkspace); on Docker there are none to cordon, and others may not.
func TestCordonNodes(t *testing.T) {
	newServer := func(nodes web.NodeCordoner) (*httptest.Server, *env) {
		st := storetest.Open(t, storetest.SQLite)
		s := &web.Server{Store: st, SessionTTL: time.Hour, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			Setups: &setups.Service{Store: st, Namespace: "default"}, Verifier: &providers.Verifier{}, Nodes: nodes}
		h, err := s.Handler()
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv, &env{srv: srv, store: st}
	}
	signIn := func(srv *httptest.Server) *http.Client {
		admin := client()
		if resp, _ := admin.PostForm(srv.URL+"/setup", url.Values{"username": {"admin"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("setup: %d", resp.StatusCode)
		}
		return admin
	}

	cluster := fakeCluster{"node-a": false}
	srv, e := newServer(cluster)
	admin := signIn(srv)
	if resp, body := do(t, admin, "GET", srv.URL+"/api/v1/ops/nodes", "", nil); resp.StatusCode != http.StatusOK || !strings.Contains(body, `"name":"node-a"`) {
		t.Fatalf("list nodes: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, admin, "POST", srv.URL+"/api/v1/ops/nodes/node-a/cordon", "", nil); resp.StatusCode != http.StatusOK || !cluster["node-a"] {
		t.Fatalf("cordon: %d %s (cordoned %v)", resp.StatusCode, body, cluster["node-a"])
	}
	if resp, _ := do(t, admin, "POST", srv.URL+"/ops/nodes/node-a/uncordon", "", nil); resp.StatusCode != http.StatusSeeOther || cluster["node-a"] {
		t.Fatalf("uncordon from the page: %d (cordoned %v)", resp.StatusCode, cluster["node-a"])
	}
	if resp, body := do(t, admin, "POST", srv.URL+"/api/v1/ops/nodes/node-z/cordon", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("cordon a node the cluster lacks: %d %s, want 404", resp.StatusCode, body)
	}
	if resp, _ := do(t, e.user(t, "alice"), "POST", srv.URL+"/api/v1/ops/nodes/node-a/cordon", "", nil); resp.StatusCode != http.StatusForbidden || cluster["node-a"] {
		t.Errorf("a user cordons: %d (cordoned %v), want 403", resp.StatusCode, cluster["node-a"])
	}

	// On Docker there are hosts, not nodes.
	srv, _ = newServer(nil)
	admin = signIn(srv)
	if resp, body := do(t, admin, "GET", srv.URL+"/api/v1/ops/nodes", "", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no_cluster") {
		t.Errorf("nodes on Docker: %d %s, want 404 no_cluster", resp.StatusCode, body)
	}
}
