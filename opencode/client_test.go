package opencode

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestPreload: Preload asks for the instance, plugins, tools and file search in that order,
// never for the providers (which would take the credentials before PUT /auth hands them over),
// and stops at the first refusal.
func TestPreload(t *testing.T) {
	var asked []string
	fail := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "opencode" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		asked = append(asked, r.URL.Path)
		if r.URL.Path == fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	c := New(srv.URL, "pw", nil)
	if err := c.Preload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/config", "/command", "/experimental/tool/ids", "/find/file"}; !slices.Equal(asked, want) {
		t.Fatalf("Preload asked %v, want %v", asked, want)
	}
	asked, fail = nil, "/command"
	if err := c.Preload(context.Background()); err == nil {
		t.Fatal("Preload went on past a 500")
	}
	if want := []string{"/config", "/command"}; !slices.Equal(asked, want) {
		t.Fatalf("after a refusal Preload asked %v, want %v", asked, want)
	}
}
