package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/web"
)

// TestLoginThrottleLeavesTheOwnerAWayIn: wrong passwords for an account lock it only from the
// source they came from. Another address signs in at once; so does the owner's browser that
// signed in before (its device cookie), even from the attacker's own address; a made-up device
// cookie, or another user's, is no way around the lock.
func TestLoginThrottleLeavesTheOwnerAWayIn(t *testing.T) {
	lock := store.Backoff{Free: 3, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	srv, st := newServer(t, &web.Server{TrustedProxies: []string{"127.0.0.1"},
		LoginBackoff: map[string]store.Backoff{store.ThrottleAccount: lock, store.ThrottleAddress: {Free: 10, Base: time.Minute, Max: time.Hour, Forget: time.Hour}}})
	ctx := context.Background()
	for _, name := range []string{"admin", "bob"} {
		hash, _ := bcrypt.GenerateFromPassword([]byte("password of "+name), bcrypt.MinCost)
		if err := st.CreateUser(ctx, &store.User{Username: name, PasswordHash: string(hash), Role: store.RoleAdmin}); err != nil {
			t.Fatal(err)
		}
	}
	login := func(c *http.Client, from, user, password string) int {
		t.Helper()
		body := url.Values{"username": {user}, "password": {password}}.Encode()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const attacker, home, elsewhere = "203.0.113.7", "198.51.100.2", "192.0.2.9"

	// The owner signed in once from home: the browser is known from then on.
	owner := client()
	if code := login(owner, home, "admin", "password of admin"); code != http.StatusSeeOther {
		t.Fatalf("the owner's first sign-in: %d", code)
	}
	bobs := client()
	if code := login(bobs, home, "bob", "password of bob"); code != http.StatusSeeOther {
		t.Fatalf("bob's sign-in: %d", code)
	}

	// Guesses at admin from the attacker's address lock admin there, and at home for browsers
	// without the owner's cookie.
	for i := range 3 {
		if code := login(client(), attacker, "admin", "a guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, code)
		}
		if code := login(client(), home, "admin", "a guess"); code != http.StatusUnauthorized {
			t.Fatalf("guess %d from home: %d", i+1, code)
		}
	}
	if code := login(client(), attacker, "admin", "password of admin"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password from the attacker's address: %d, want 429", code)
	}
	if code := login(client(), home, "admin", "password of admin"); code != http.StatusTooManyRequests {
		t.Fatalf("the right password from home without the device cookie: %d, want 429", code)
	}
	// Forged and borrowed device cookies change nothing.
	forged := client()
	u, _ := url.Parse(srv.URL)
	forged.Jar.SetCookies(u, []*http.Cookie{{Name: "doce_device", Value: "made-up"}})
	if code := login(forged, home, "admin", "password of admin"); code != http.StatusTooManyRequests {
		t.Errorf("a made-up device cookie: %d, want 429", code)
	}
	if code := login(bobs, home, "admin", "password of admin"); code != http.StatusTooManyRequests {
		t.Errorf("bob's device cookie for admin: %d, want 429", code)
	}
	// Another address, and the owner's known browser from any address, sign in.
	if code := login(client(), elsewhere, "admin", "password of admin"); code != http.StatusSeeOther {
		t.Errorf("the right password from another address: %d, want 303", code)
	}
	for _, from := range []string{home, attacker} {
		if code := login(owner, from, "admin", "password of admin"); code != http.StatusSeeOther {
			t.Errorf("the owner's browser from %s: %d, want 303", from, code)
		}
	}
	// Nothing else changed: the attacker's lock holds, and the owner's browser is still one.
	if code := login(client(), attacker, "admin", "password of admin"); code != http.StatusTooManyRequests {
		t.Errorf("the attacker's address after the owner signed in: %d, want 429", code)
	}
	if n, _ := st.DB.NewSelect().Table("login_devices").Count(ctx); n != 3 { // owner, bob, the sign-in from elsewhere
		t.Errorf("%d known browsers, want 3", n)
	}
}
