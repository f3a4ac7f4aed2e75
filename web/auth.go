package web

import (
	"errors"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/crypto/bcrypt"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

const userKey = "doce.user"

func currentUser(c *gin.Context) *store.User {
	if u, ok := c.Get(userKey); ok {
		return u.(*store.User)
	}
	return nil
}

// loadUser attaches the signed-in user, if any, to the request: by session cookie, or on
// /api/v1 by an API token in the Authorization header.
func (s *Server) loadUser(c *gin.Context) {
	if h := c.GetHeader("Authorization"); h != "" && isAPI(c) {
		s.loadBearer(c, h)
		return
	}
	token := s.readCookie(c, sessionCookie)
	if token == "" {
		return
	}
	u, err := s.Store.UserBySessionToken(c.Request.Context(), token)
	if err == nil {
		c.Set(userKey, u)
	} else if !errors.Is(err, store.ErrNotFound) {
		s.fail(c, err)
	}
}

// requireUser sends anonymous visitors to first-run setup or the login page (401 for the API).
func (s *Server) requireUser(c *gin.Context) {
	if currentUser(c) != nil {
		return
	}
	if isAPI(c) {
		s.fail(c, httperr.New(http.StatusUnauthorized, "unauthenticated", "Sign in first."))
		return
	}
	n, err := s.Store.CountUsers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	if n == 0 {
		c.Redirect(http.StatusSeeOther, "/setup")
	} else {
		c.Redirect(http.StatusSeeOther, "/login")
	}
	c.Abort()
}

// dummyHash is compared against for unknown usernames, so a login takes as long whether or
// not the user exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.DefaultCost)

var usernameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{3,64}$`)

func validateCredentials(username, password string) *httperr.Error {
	if !usernameRE.MatchString(username) {
		return httperr.Invalid("username", "Use 3 to 64 letters, digits, dots, dashes or underscores.")
	}
	if len(password) < 10 {
		return httperr.Invalid("password", "Use a password of at least 10 characters.")
	}
	if len(password) > 72 {
		return httperr.Invalid("password", "Use a password of at most 72 bytes.")
	}
	return nil
}

func (s *Server) setupPage(c *gin.Context) {
	n, err := s.Store.CountUsers(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	if n > 0 {
		c.Redirect(http.StatusSeeOther, "/login")
		return
	}
	s.render(c, http.StatusOK, "setup.html", gin.H{"Title": "Set up doce"})
}

// setupSubmit creates the first admin; it is refused once any user exists.
func (s *Server) setupSubmit(c *gin.Context) {
	username, password := strings.TrimSpace(c.PostForm("username")), c.PostForm("password")
	if e := validateCredentials(username, password); e != nil {
		s.render(c, e.Status, "setup.html", gin.H{"Title": "Set up doce", "Error": e, "Username": echo(username, 64)})
		return
	}
	hash, err := store.HashPassword(password)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := &store.User{Username: username, PasswordHash: hash}
	if err := s.Store.CreateFirstAdmin(c.Request.Context(), u); errors.Is(err, store.ErrConflict) {
		s.fail(c, httperr.New(http.StatusConflict, "already_set_up", "doce is already set up. Sign in instead."))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	s.startSession(c, u, "/settings/providers")
}

func (s *Server) loginPage(c *gin.Context) {
	s.render(c, http.StatusOK, "login.html", gin.H{"Title": "Sign in"})
}

func (s *Server) loginSubmit(c *gin.Context) {
	username, password := strings.TrimSpace(c.PostForm("username")), c.PostForm("password")
	ctx := c.Request.Context()
	// Only a name that could exist is put back into the form: never a huge or odd input.
	page := gin.H{"Title": "Sign in", "Username": echo(username, 64)}
	if !usernameRE.MatchString(username) {
		page["Username"] = ""
	}
	var u *store.User
	if usernameRE.MatchString(username) {
		var err error
		if u, err = s.Store.UserByUsername(ctx, username); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.fail(c, err)
			return
		}
	}
	keys, knownDevice := s.loginKeys(c, username, u)
	// A locked account or address is refused before the password is looked at, with the same
	// answer whether or not the username exists.
	if wait, err := s.Store.LoginLockedFor(ctx, time.Now(), keys...); err != nil {
		s.fail(c, err)
		return
	} else if wait > 0 {
		e := errThrottled(wait)
		c.Header("Retry-After", retryAfter(wait))
		page["Error"] = e
		s.render(c, e.Status, "login.html", page)
		return
	}
	hash := string(dummyHash)
	if u != nil {
		hash = u.PasswordHash
	}
	ok, rehash, err := store.CheckPassword(hash, password)
	if errors.Is(err, store.ErrPasswordReset) {
		s.loginFailed(c, keys)
		page["Error"] = httperr.New(http.StatusUnauthorized, "password_reset", "Your password must be reset. Ask an administrator to set a new one.")
		s.render(c, http.StatusUnauthorized, "login.html", page)
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	if !ok || u == nil {
		s.loginFailed(c, keys)
		page["Error"] = httperr.New(http.StatusUnauthorized, "bad_credentials", "Wrong username or password.")
		s.render(c, http.StatusUnauthorized, "login.html", page)
		return
	}
	if u.DisabledAt != nil {
		page["Error"] = httperr.New(http.StatusUnauthorized, "disabled", "This account is disabled. Ask an administrator.")
		s.render(c, http.StatusUnauthorized, "login.html", page)
		return
	}
	// The right password ends this source's streak at the account; the address's stays, so one's
	// own account cannot reset the count of guesses at others'.
	for _, k := range keys {
		if k.Kind != store.ThrottleAccount {
			continue
		}
		if _, err := s.Store.ClearLoginThrottle(ctx, k); err != nil {
			s.Log.Warn("unable to clear the account's failed sign-ins", "user_id", u.ID, "error", err)
		}
	}
	if !knownDevice {
		// From now on this browser is known: its sign-ins are counted on their own.
		if token, err := s.Store.CreateLoginDevice(ctx, u.ID); err != nil {
			s.Log.Warn("unable to remember the browser", "user_id", u.ID, "error", err)
		} else {
			s.setCookie(c, deviceCookie, token, int(deviceCookieTTL.Seconds()))
		}
	}
	if rehash { // an imported legacy hash: replace it with bcrypt now that we know the password
		if h, err := store.HashPassword(password); err == nil {
			if err := s.Store.SetPasswordHash(ctx, u.ID, h); err != nil {
				s.Log.Warn("unable to upgrade a legacy password hash", "user_id", u.ID, "error", err)
			}
		}
	}
	s.startSession(c, u, "/projects")
}

func (s *Server) startSession(c *gin.Context, u *store.User, next string) {
	token, err := s.Store.CreateSession(c.Request.Context(), u.ID, s.SessionTTL)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setCookie(c, sessionCookie, token, int(s.SessionTTL.Seconds()))
	c.Redirect(http.StatusSeeOther, next)
}

func (s *Server) logout(c *gin.Context) {
	if token := s.readCookie(c, sessionCookie); token != "" {
		if err := s.Store.DeleteSession(c.Request.Context(), token); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/login")
}
