package web

import (
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// Login throttling: failed sign-ins are counted in the database per client address, and per
// account from each source, and back off exponentially. An address gets more room than an
// account, since many people can share one (an office behind NAT). No count is per account
// alone: guesses from elsewhere never lock the account's owner out. A browser the owner signed in
// from before (its device cookie) is a source of its own and skips the address's count, so even
// guesses from the owner's own network leave that browser a way in.
var defaultLoginBackoff = map[string]store.Backoff{
	store.ThrottleAccount: {Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	store.ThrottleAddress: {Free: 20, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
}

// deviceCookieTTL is how long a browser stays known after signing in.
const deviceCookieTTL = 365 * 24 * time.Hour

func (s *Server) loginBackoff() map[string]store.Backoff {
	if s.LoginBackoff != nil {
		return s.LoginBackoff
	}
	return defaultLoginBackoff
}

// clientSubject is the address a client is throttled by: its IP (as gin finds it behind the
// trusted proxies only), or its /64 for IPv6, where one host commonly holds a whole /64.
func clientSubject(c *gin.Context) string {
	addr, err := netip.ParseAddr(c.ClientIP())
	if err != nil {
		return c.ClientIP()
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// loginKeys are the throttles a sign-in as username (u when it exists) counts against, and
// whether it comes from a browser u signed in from before. A username that cannot exist counts
// only against the address.
func (s *Server) loginKeys(c *gin.Context, username string, u *store.User) ([]store.ThrottleKey, bool) {
	if u != nil {
		if token := s.readCookie(c, deviceCookie); token != "" {
			id, err := s.Store.LoginDeviceOf(c.Request.Context(), token, u.ID)
			if err == nil {
				return []store.ThrottleKey{{Kind: store.ThrottleAccount, Subject: accountSubject(u.Username, "device:"+id)}}, true
			} else if !errors.Is(err, store.ErrNotFound) {
				s.Log.Warn("unable to look up a login device", "error", err)
			}
		}
	}
	source := clientSubject(c)
	keys := []store.ThrottleKey{{Kind: store.ThrottleAddress, Subject: source}}
	if usernameRE.MatchString(username) {
		keys = append(keys, store.ThrottleKey{Kind: store.ThrottleAccount, Subject: accountSubject(username, source)})
	}
	return keys, false
}

// accountSubject names the count of an account's failed sign-ins from one source (an address or
// a known browser): "alice@203.0.113.7". Usernames hold no "@".
func accountSubject(username, source string) string {
	return strings.ToLower(username) + "@" + source
}

// retryAfter is a Retry-After header's value for wait.
func retryAfter(wait time.Duration) string { return strconv.Itoa(int(math.Ceil(wait.Seconds()))) }

func errThrottled(wait time.Duration) *httperr.Error {
	secs := int(math.Ceil(wait.Seconds()))
	return httperr.New(http.StatusTooManyRequests, "too_many_attempts",
		"Too many failed sign-ins. Wait "+strconv.Itoa(secs)+" seconds before trying again.")

}

// loginFailed counts a failed sign-in and audits every lockout it starts.
func (s *Server) loginFailed(c *gin.Context, keys []store.ThrottleKey) {
	ctx := c.Request.Context()
	locked, err := s.Store.RecordLoginFailure(ctx, time.Now(), s.loginBackoff(), keys...)
	if err != nil {
		s.Log.Error("unable to count a failed sign-in", "error", err)
		return
	}
	for _, l := range locked {
		s.Log.Warn("sign-in locked", "kind", l.Kind, "subject", l.Subject, "failures", l.Failures)
		err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: "anonymous", Action: "login.locked", TargetType: l.Kind, TargetID: l.Subject,
			Detail: "failures=" + strconv.Itoa(l.Failures) + " until=" + l.LockedUntil.UTC().Format(time.RFC3339)})
		if err != nil {
			s.Log.Error("unable to audit a sign-in lockout", "error", err)
		}
	}
}

// LockoutInput names the lockout an administrator clears.
type LockoutInput struct {
	Kind    string `json:"kind" form:"kind"`
	Subject string `json:"subject" form:"subject"`
}

func (s *Server) lockouts(c *gin.Context) ([]store.LoginThrottle, error) {
	now := time.Now()
	return s.Store.LoginThrottles(c.Request.Context(), now, now.Add(-time.Hour), 200)
}

func (s *Server) clearLockout(c *gin.Context, in LockoutInput) error {
	if in.Kind != store.ThrottleAccount && in.Kind != store.ThrottleAddress {
		return httperr.Invalid("kind", "Name the kind of lockout: account or address.")
	}
	ok, err := s.Store.ClearLoginThrottle(c.Request.Context(), store.ThrottleKey{Kind: in.Kind, Subject: in.Subject})
	if err != nil {
		return err
	}
	if !ok {
		return httperr.NotFound("lockout")
	}
	return s.Store.Audit(c.Request.Context(), nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: "login.unlock", TargetType: in.Kind, TargetID: in.Subject})
}

func (s *Server) apiLockouts(c *gin.Context) {
	ls, err := s.lockouts(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"lockouts": ls})
}

func (s *Server) apiClearLockout(c *gin.Context) {
	var in LockoutInput
	if !bindJSON(c, s, &in) {
		return
	}
	if err := s.clearLockout(c, in); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

func (s *Server) clearLockoutSubmit(c *gin.Context) {
	var in LockoutInput
	_ = c.ShouldBind(&in)
	if err := s.clearLockout(c, in); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}
