package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/web"
)

// TestPasswordChange: wrong current passwords are throttled like sign-ins (the right one is then
// refused too, and nothing changes); a change signs out every other session and revokes every
// API token of the user, keeps the session that made it, and only the new password signs in.
func TestPasswordChange(t *testing.T) {
	lock := store.Backoff{Free: 3, Base: time.Minute, Max: time.Hour, Forget: time.Hour}
	srv, st := newServer(t, &web.Server{LoginBackoff: map[string]store.Backoff{store.ThrottleAccount: lock, store.ThrottleAddress: {Free: 100, Base: time.Minute, Max: time.Hour, Forget: time.Hour}}})
	ctx := context.Background()
	hash, _ := bcrypt.GenerateFromPassword([]byte("the old password"), bcrypt.MinCost)
	if err := st.CreateUser(ctx, &store.User{Username: "alice", PasswordHash: string(hash), Role: store.RoleUser}); err != nil {
		t.Fatal(err)
	}
	login := func(password string) (*http.Client, int) {
		c := client()
		resp, err := c.PostForm(srv.URL+"/login", url.Values{"username": {"alice"}, "password": {password}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c, resp.StatusCode
	}
	here, _ := login("the old password")
	there, _ := login("the old password")
	resp, body := do(t, here, "POST", srv.URL+"/api/v1/account/tokens", "", map[string]any{"name": "ci", "scope": "write"})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var created struct{ Token string }
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Token == "" {
		t.Fatalf("token: %s", body)
	}
	token := created.Token
	signedIn := func(c *http.Client, bearer string) bool {
		resp, _ := do(t, c, "GET", srv.URL+"/api/v1/projects", bearer, nil)
		return resp.StatusCode == http.StatusOK
	}
	change := func(current string) (int, string) {
		resp, err := here.PostForm(srv.URL+"/account", url.Values{"currentPassword": {current}, "newPassword": {"the new password"}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Retry-After") + " " + read(t, resp)
	}

	for i := range 3 {
		if code, body := change("a guess"); code != http.StatusBadRequest || !strings.Contains(body, "not your current password") {
			t.Fatalf("wrong current password %d: %d", i+1, code)
		}
	}
	if code, body := change("the old password"); code != http.StatusTooManyRequests || !strings.HasPrefix(body, "6") && !strings.HasPrefix(body, "5") {
		t.Fatalf("the right password while throttled: %d %.40q, want 429 with Retry-After about 60", code, body)
	}
	// Nothing changed: both sessions and the token work, the old password signs in elsewhere.
	if !signedIn(here, "") || !signedIn(there, "") || !signedIn(http.DefaultClient, "Bearer "+token) {
		t.Fatalf("a refused change ended a session or the token: %v %v %v", signedIn(here, ""), signedIn(there, ""), signedIn(http.DefaultClient, "Bearer "+token))
	}
	if u, _ := st.UserByUsername(ctx, "alice"); bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte("the old password")) != nil {
		t.Fatal("a refused change changed the password")
	}

	// An administrator clears the lockout: the browser's own (it signed in, so it is known).
	ls, _ := st.LoginThrottles(ctx, time.Now(), time.Now().Add(-time.Hour), 10)
	if len(ls) != 1 || !strings.HasPrefix(ls[0].Subject, "alice@device:") {
		t.Fatalf("lockouts %+v, want alice's browser's", ls)
	}
	if _, err := st.ClearLoginThrottle(ctx, store.ThrottleKey{Kind: ls[0].Kind, Subject: ls[0].Subject}); err != nil {
		t.Fatal(err)
	}
	if code, body := change("the old password"); code != http.StatusSeeOther {
		t.Fatalf("change: %d %s", code, body)
	}
	if !signedIn(here, "") {
		t.Error("the session that changed the password was signed out")
	}
	if signedIn(there, "") {
		t.Error("another session lives on after the change")
	}
	if signedIn(http.DefaultClient, "Bearer "+token) {
		t.Error("an API token lives on after the change")
	}
	if _, code := login("the old password"); code != http.StatusUnauthorized {
		t.Errorf("the old password: %d, want 401", code)
	}
	if _, code := login("the new password"); code != http.StatusSeeOther {
		t.Errorf("the new password: %d, want 303", code)
	}
}
