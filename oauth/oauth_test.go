package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/oauth/oauthtest"
)

// Every flow runs against the local authorization server (ory/fosite), GitHub's and
// ChatGPT's paths and quirks included.

func flow(t *testing.T, srv *oauthtest.Server, providerID string) oauth.Flow {
	t.Helper()
	s := &oauth.Settings{
		URLs:      map[string]string{providerID: srv.URL()},
		ClientIDs: map[string]string{providerID: "doce-test"},
	}
	f, err := s.Flow(providerID, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func server(t *testing.T, opts oauthtest.Options) *oauthtest.Server {
	opts.ClientIDs = []string{"doce-test"}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	return oauthtest.Start(t, opts)
}

// approveSoon plays the user entering the code after a moment.
func approveSoon(t *testing.T, srv *oauthtest.Server, code string, after time.Duration, deny bool) {
	t.Helper()
	time.AfterFunc(after, func() {
		decide := srv.Approve
		if deny {
			decide = srv.Deny
		}
		if err := decide(code); err != nil {
			t.Errorf("user decision: %v", err)
		}
	})
}

func login(t *testing.T, f oauth.Flow) (oauth.Pending, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, secret, err := f.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.UserCode == "" || p.VerificationURI == "" || secret == "" || p.Interval < time.Second || p.ExpiresAt.IsZero() {
		t.Fatalf("pending login %+v (secret set: %v)", p, secret != "")
	}
	if strings.Contains(p.VerificationURI, secret) || p.UserCode == secret {
		t.Fatal("the device secret shows in what the user sees")
	}
	return p, secret
}

func wait(f oauth.Flow, p oauth.Pending, secret string) (oauth.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Wait(ctx, p, secret)
}

func TestDeviceLoginPendingSlowDownThenSuccess(t *testing.T) {
	for _, provider := range []string{"github-copilot", "openai"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			srv := server(t, oauthtest.Options{AccessTokenLifespan: time.Hour})
			f := flow(t, srv, provider)
			p, secret := login(t, f)
			if provider == "github-copilot" {
				srv.SlowDown(1) // the first poll is told to back off; the client must still finish
			}
			approveSoon(t, srv, p.UserCode, 1500*time.Millisecond, false)
			start := time.Now()
			tok, err := wait(f, p, secret)
			if err != nil {
				t.Fatal(err)
			}
			if tok.Access == "" || tok.Refresh == "" || tok.Expiry.Before(time.Now().Add(50*time.Minute)) {
				t.Fatalf("token %v: access set %v, refresh set %v", tok, tok.Access != "", tok.Refresh != "")
			}
			if !srv.ActiveAccessToken(tok.Access) {
				t.Fatal("the server does not know the access token")
			}
			if provider == "openai" && !strings.HasPrefix(tok.AccountID, "acct-test-") {
				t.Fatalf("account id %q", tok.AccountID)
			}
			took := time.Since(start)
			if provider == "github-copilot" && took < 6*time.Second {
				t.Fatalf("signed in after %s: slow_down must add 5 s to the 1 s interval", took)
			}
			t.Logf("%s: signed in %s after start", provider, took.Round(100*time.Millisecond))
		})
	}
}

func TestDeviceLoginDenied(t *testing.T) {
	for _, provider := range []string{"github-copilot", "openai"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			srv := server(t, oauthtest.Options{})
			f := flow(t, srv, provider)
			p, secret := login(t, f)
			approveSoon(t, srv, p.UserCode, 500*time.Millisecond, true)
			if _, err := wait(f, p, secret); !errors.Is(err, oauth.ErrDenied) {
				t.Fatalf("want ErrDenied, got %v", err)
			}
		})
	}
}

func TestDeviceLoginCodeExpires(t *testing.T) {
	srv := server(t, oauthtest.Options{DeviceCodeLifespan: 2 * time.Second})
	f := flow(t, srv, "github-copilot")
	p, secret := login(t, f)
	start := time.Now()
	if _, err := wait(f, p, secret); !errors.Is(err, oauth.ErrExpired) {
		t.Fatalf("want ErrExpired, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("noticed the expiry only after %s", d)
	}
}

func TestRefreshRotatesAndRevokedIsPermanent(t *testing.T) {
	for _, provider := range []string{"github-copilot", "openai"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			srv := server(t, oauthtest.Options{AccessTokenLifespan: time.Hour})
			f := flow(t, srv, provider)
			p, secret := login(t, f)
			approveSoon(t, srv, p.UserCode, 0, false)
			first, err := wait(f, p, secret)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			second, err := f.Refresh(ctx, first.Refresh)
			if err != nil {
				t.Fatal(err)
			}
			if second.Access == first.Access || second.Refresh == first.Refresh || second.Refresh == "" {
				t.Fatal("refresh did not rotate both tokens")
			}
			if !srv.ActiveAccessToken(second.Access) {
				t.Fatal("the new access token is not active")
			}
			if provider == "openai" && second.AccountID == "" {
				t.Fatal("the refreshed ChatGPT token lost its account id")
			}
			if err := srv.RevokeRefreshToken(second.Refresh); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Refresh(ctx, second.Refresh); !errors.Is(err, oauth.ErrRevoked) {
				t.Fatalf("refresh after revocation: want ErrRevoked, got %v", err)
			}
		})
	}
}

func TestRefreshWhileTheServerIsDownIsNotRevoked(t *testing.T) {
	srv := server(t, oauthtest.Options{})
	f := flow(t, srv, "openai")
	srv.Close()
	if _, err := f.Refresh(context.Background(), "some-refresh-token"); err == nil || errors.Is(err, oauth.ErrRevoked) {
		t.Fatalf("an unreachable server is a transient error, got %v", err)
	}
}

func TestEnterpriseURL(t *testing.T) {
	for in, want := range map[string]string{
		"company.ghe.com":          "https://company.ghe.com",
		"https://company.ghe.com/": "https://company.ghe.com",
		"http://127.0.0.1:8080":    "http://127.0.0.1:8080",
	} {
		if got, err := oauth.EnterpriseURL(in); err != nil || got != want {
			t.Errorf("EnterpriseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://company.ghe.com", "https://user:pw@ghe.com", "https://ghe.com/path", "ftp://ghe.com"} {
		if _, err := oauth.EnterpriseURL(bad); err == nil {
			t.Errorf("EnterpriseURL(%q) accepted", bad)
		}
	}
	if h := oauth.EnterpriseHost("https://company.ghe.com"); h != "company.ghe.com" {
		t.Errorf("EnterpriseHost = %q", h)
	}
}

func TestTokenNeverPrintsItsSecrets(t *testing.T) {
	tok := oauth.Token{Access: "at-secret", Refresh: "rt-secret", Expiry: time.Now()}
	for _, s := range []string{tok.String(), fmt.Sprintf("%v %+v", tok, tok)} {
		if strings.Contains(s, "secret") {
			t.Fatalf("printed %q", s)
		}
	}
}
