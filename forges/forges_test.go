package forges_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/outbound"
)

const goodToken = "tok-4f1b2c3d4e5f6a7b8c9d"

// fakeForge answers "who am I" the way each kind's API does, for goodToken only, and records
// how the token came.
func fakeForge(t *testing.T, kind string) (*httptest.Server, *[]string) {
	t.Helper()
	var seen []string
	path, auth, body := map[string]string{
		forges.GitHub: "/api/v3/user",
		forges.GitLab: "/api/v4/user",
		forges.Gitea:  "/api/v1/user",
	}[kind], func(r *http.Request) string {
		if kind == forges.GitLab {
			return r.Header.Get("PRIVATE-TOKEN")
		}
		a := r.Header.Get("Authorization")
		a = strings.TrimPrefix(a, "Bearer ")
		return strings.TrimPrefix(a, "token ")
	}, map[string]string{
		forges.GitHub: `{"login":"ada","name":"Ada Lovelace","id":1}`,
		forges.GitLab: `{"username":"ada","name":"Ada Lovelace","id":1}`,
		forges.Gitea:  `{"login":"ada","username":"ada","full_name":"Ada Lovelace","id":1}`,
	}[kind]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path)
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if auth(r) != goodToken {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Bad credentials"}`))
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv, &seen
}

// loopback is the outbound policy with this machine allowed, as an operator allows a forge on
// a private address.
func loopback(t *testing.T) *http.Client {
	p, err := outbound.Parse("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return p.Client(10 * time.Second)
}

func TestCheckEachKind(t *testing.T) {
	for _, kind := range forges.Kinds {
		t.Run(kind, func(t *testing.T) {
			srv, seen := fakeForge(t, kind)
			base, err := forges.Normalize(kind, srv.URL+"/")
			if err != nil {
				t.Fatal(err)
			}
			acct, err := forges.Check(context.Background(), kind, base, goodToken, loopback(t))
			if err != nil || acct.Login != "ada" || acct.Name != "Ada Lovelace" {
				t.Fatalf("good token: %+v %v (requests %v)", acct, err, *seen)
			}

			_, err = forges.Check(context.Background(), kind, base, "wrong-token", loopback(t))
			var fe *forges.FieldError
			if !errors.As(err, &fe) || fe.Field != "token" || !strings.Contains(fe.Message, "refused this token") {
				t.Fatalf("wrong token: %v", err)
			}
			if strings.Contains(err.Error(), "wrong-token") {
				t.Errorf("the error names the token: %v", err)
			}

			// Something that is not this kind of forge answers at the address.
			other := httptest.NewServer(http.NotFoundHandler())
			defer other.Close()
			_, err = forges.Check(context.Background(), kind, other.URL, goodToken, loopback(t))
			if !errors.As(err, &fe) || fe.Field != "baseURL" || !strings.Contains(fe.Message, "No "+forges.Name(kind)+" API answered") {
				t.Fatalf("not a forge: %v", err)
			}
		})
	}
}

func TestCheckRefusedAndUnreachable(t *testing.T) {
	srv, seen := fakeForge(t, forges.Gitea)
	// doce's default policy: this machine is off limits.
	_, err := forges.Check(context.Background(), forges.Gitea, srv.URL, goodToken, (&outbound.Policy{}).Client(5*time.Second))
	var fe *forges.FieldError
	if !errors.As(err, &fe) || fe.Field != "baseURL" || fe.Message != outbound.RefusedMessage {
		t.Fatalf("private address: %v", err)
	}
	if len(*seen) != 0 {
		t.Errorf("the refused forge was asked: %v", *seen)
	}

	// Nothing listens there any more.
	url := srv.URL
	srv.Close()
	_, err = forges.Check(context.Background(), forges.Gitea, url, goodToken, loopback(t))
	if !errors.As(err, &fe) || fe.Field != "baseURL" || !strings.Contains(fe.Message, "Could not reach Gitea at 127.0.0.1:") {
		t.Fatalf("unreachable: %v", err)
	}
}

// TestCheckFollowsNoRedirect: a forge address that redirects elsewhere gets no token sent
// there; the check says no forge answered.
func TestCheckFollowsNoRedirect(t *testing.T) {
	for _, kind := range forges.Kinds {
		var leaked []string
		elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			leaked = append(leaked, r.Header.Get("Authorization")+r.Header.Get("PRIVATE-TOKEN"))
			http.NotFound(w, r)
		}))
		redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
		}))
		_, err := forges.Check(context.Background(), kind, redirecting.URL, goodToken, loopback(t))
		var fe *forges.FieldError
		if !errors.As(err, &fe) || fe.Field != "baseURL" {
			t.Errorf("%s behind a redirect: %v", kind, err)
		}
		if len(leaked) != 0 {
			t.Errorf("%s: the redirect was followed, with %q", kind, leaked)
		}
		redirecting.Close()
		elsewhere.Close()
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		kind, in, want, field string
	}{
		{forges.GitHub, "", "https://github.com", ""},
		{forges.GitHub, "https://api.github.com/", "https://github.com", ""},
		{forges.GitHub, "https://GHE.example.com/", "https://ghe.example.com", ""},
		{forges.GitLab, "", "https://gitlab.com", ""},
		{forges.GitLab, "https://gitlab.example.com/sub/", "https://gitlab.example.com/sub", ""},
		{forges.Gitea, "http://git.example.com:3000", "http://git.example.com:3000", ""},
		{forges.Gitea, "", "", "baseURL"},
		{forges.Gitea, "ftp://git.example.com", "", "baseURL"},
		{forges.Gitea, "git.example.com", "", "baseURL"},
		{forges.Gitea, "https://ada:secret@git.example.com", "", "baseURL"},
		{forges.Gitea, "https://git.example.com/?x=1", "", "baseURL"},
		{"bitbucket", "", "", "kind"},
	} {
		got, err := forges.Normalize(tc.kind, tc.in)
		var fe *forges.FieldError
		switch {
		case tc.field == "" && (err != nil || got != tc.want):
			t.Errorf("Normalize(%s, %q) = %q, %v; want %q", tc.kind, tc.in, got, err, tc.want)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("Normalize(%s, %q) = %q, %v; want an error on %s", tc.kind, tc.in, got, err, tc.field)
		case fe != nil && strings.Contains(fe.Message, "secret"):
			t.Errorf("the message repeats the URL's password: %s", fe.Message)
		}
	}
}

func TestValidateToken(t *testing.T) {
	for tok, ok := range map[string]bool{
		goodToken:                 true,
		"":                        false,
		"two words":               false,
		"line\nbreak":             false,
		"ünïcode":                 false,
		strings.Repeat("a", 2000): false,
	} {
		if err := forges.ValidateToken(tok); (err == nil) != ok {
			t.Errorf("ValidateToken(%.20q) = %v, want ok=%v", tok, err, ok)
		}
	}
}
