package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// Personal access tokens let scripts and CI use /api/v1 with `Authorization: Bearer <token>`.
// Pages never accept them: a page is for a person with a session cookie. A bearer request is no
// CSRF vector, since a browser never attaches the header by itself; cross-origin protection
// stays in front of every route regardless.

const (
	tokenKey = "doce.apiToken"

	maxTokenDays     = 365 // the longest a token may live; a leaked one stops working within a year
	defaultTokenDays = 30
	maxTokensPerUser = 50
	maxTokenNameLen  = 64
)

// tokenDayChoices are the lifetimes the account page offers.
var tokenDayChoices = []int{7, 30, 90, 365}

func currentToken(c *gin.Context) *store.APIToken {
	if t, ok := c.Get(tokenKey); ok {
		return t.(*store.APIToken)
	}
	return nil
}

// loadBearer authenticates an /api/v1 request by its Authorization header. A request that sends
// the header is judged by it alone, never by a cookie it may also carry.
func (s *Server) loadBearer(c *gin.Context, header string) {
	scheme, secret, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		c.Header("WWW-Authenticate", `Bearer error="invalid_request"`)
		s.fail(c, httperr.New(http.StatusUnauthorized, "invalid_authorization", "Send the API token as \"Authorization: Bearer <token>\"."))
		return
	}
	u, t, err := s.Store.UserByAPIToken(c.Request.Context(), strings.TrimSpace(secret))
	if errors.Is(err, store.ErrNotFound) {
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
		s.fail(c, httperr.New(http.StatusUnauthorized, "invalid_token", "This API token is unknown, revoked or expired. Create a new one on your account page."))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	safe := c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead
	if t.Scope == store.ScopeRead && !safe {
		s.fail(c, httperr.New(http.StatusForbidden, "token_read_only", "This API token is read-only: it cannot "+c.Request.Method+". Use a read-write token to make changes."))
		return
	}
	// Creating, disabling or unlocking accounts takes a token made for it: a leaked read-write
	// token of an administrator must not mint accounts that outlive the token.
	if t.Scope != store.ScopeAdmin && !safe && strings.HasPrefix(c.FullPath(), "/api/v1/admin/") { // the route matched, however the path was spelt
		s.fail(c, httperr.New(http.StatusForbidden, "token_not_admin", "This API token cannot manage accounts. An administrator makes a token of scope \"admin\" for that."))
		return
	}
	// A failure to note the use must not fail the request it was for.
	if err := s.Store.RecordAPITokenUse(c.Request.Context(), t, time.Now()); err != nil {
		s.Log.Warn("unable to record an API token's use", "token_id", t.ID, "error", err)
	}
	c.Set(userKey, u)
	c.Set(tokenKey, t)
}

// TokenInput is what a user gives to create a token.
type TokenInput struct {
	Name          string `json:"name" form:"name"`
	Scope         string `json:"scope" form:"scope"`
	ExpiresInDays int    `json:"expiresInDays" form:"expiresInDays"`
}

// TokenView is a token as its owner sees it: never the secret, except once in CreatedToken.
type TokenView struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scope      string     `json:"scope"`
	CreatedAt  time.Time  `json:"createdAt"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	LastUsedAt *time.Time `json:"lastUsedAt,omitempty"`
	Expired    bool       `json:"expired"`
}

func tokenView(t store.APIToken) TokenView {
	return TokenView{ID: t.ID, Name: t.Name, Prefix: t.DisplayPrefix, Scope: t.Scope, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, Expired: t.Expired(time.Now())}
}

func (s *Server) createToken(c *gin.Context, in TokenInput) (string, *store.APIToken, error) {
	if currentToken(c) != nil {
		// A token that could mint tokens would outlive its own expiry and revocation.
		return "", nil, httperr.New(http.StatusForbidden, "token_cannot_create_tokens", "API tokens cannot create tokens. Sign in with your password to create one.")
	}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return "", nil, httperr.Invalid("name", "Name the token, e.g. after the script that will use it.")
	case !utf8.ValidString(in.Name) || strings.IndexFunc(in.Name, unicode.IsControl) >= 0:
		return "", nil, httperr.Invalid("name", "Use letters, digits, spaces and punctuation in the name.")
	case utf8.RuneCountInString(in.Name) > maxTokenNameLen:
		return "", nil, httperr.Invalid("name", "Use a name of at most "+strconv.Itoa(maxTokenNameLen)+" characters.")
	}
	u := currentUser(c)
	switch {
	case in.Scope == store.ScopeAdmin && u.Role != store.RoleAdmin:
		return "", nil, httperr.Invalid("scope", `Only administrators make tokens of scope "admin". Choose "read" or "write".`)
	case in.Scope != store.ScopeRead && in.Scope != store.ScopeWrite && in.Scope != store.ScopeAdmin:
		return "", nil, httperr.Invalid("scope", `Choose the scope "read" (read-only), "write" (read-write) or, for administrators, "admin" (read-write and account management).`)
	}
	if in.ExpiresInDays == 0 {
		in.ExpiresInDays = defaultTokenDays
	}
	if in.ExpiresInDays < 1 || in.ExpiresInDays > maxTokenDays {
		return "", nil, httperr.Invalid("expiresInDays", "A token lasts 1 to "+strconv.Itoa(maxTokenDays)+" days.")
	}
	live, err := s.Store.APITokens(c.Request.Context(), u.ID)
	if err != nil {
		return "", nil, err
	}
	if len(live) >= maxTokensPerUser {
		return "", nil, httperr.New(http.StatusConflict, "too_many_tokens", "You have "+strconv.Itoa(maxTokensPerUser)+" tokens. Revoke one you no longer use first.")
	}
	return s.Store.CreateAPIToken(c.Request.Context(), u.ID, in.Name, in.Scope, time.Now().AddDate(0, 0, in.ExpiresInDays))
}

func (s *Server) revokeToken(c *gin.Context) error {
	if err := s.Store.RevokeAPIToken(c.Request.Context(), currentUser(c).ID, c.Param("id")); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("API token")
	} else if err != nil {
		return err
	}
	return nil
}

// renderAccount renders the account page with the user's tokens and data's extra fields.
func (s *Server) renderAccount(c *gin.Context, status int, data gin.H) {
	ts, err := s.Store.APITokens(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		views = append(views, tokenView(t))
	}
	data["Title"] = "Account"
	data["Tokens"] = views
	data["DayChoices"] = tokenDayChoices
	if _, ok := data["TokenForm"]; !ok {
		data["TokenForm"] = TokenInput{Scope: store.ScopeRead, ExpiresInDays: defaultTokenDays}
	}
	s.render(c, status, "account.html", data)
}

func (s *Server) createTokenSubmit(c *gin.Context) {
	var in TokenInput
	_ = c.ShouldBind(&in)
	secret, t, err := s.createToken(c, in)
	if err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderAccount(c, e.Status, gin.H{"TokenError": e, "TokenForm": in})
		return
	}
	// The only time the token is shown: keep it out of every cache.
	c.Header("Cache-Control", "no-store")
	s.renderAccount(c, http.StatusCreated, gin.H{"NewToken": secret, "NewTokenView": tokenView(*t)})
}

func (s *Server) revokeTokenSubmit(c *gin.Context) {
	if err := s.revokeToken(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/account?revoked=1")
}

func (s *Server) apiTokens(c *gin.Context) {
	ts, err := s.Store.APITokens(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]TokenView, 0, len(ts))
	for _, t := range ts {
		out = append(out, tokenView(t))
	}
	c.JSON(http.StatusOK, gin.H{"tokens": out})
}

func (s *Server) apiCreateToken(c *gin.Context) {
	var in TokenInput
	if !bindJSON(c, s, &in) {
		return
	}
	secret, t, err := s.createToken(c, in)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, gin.H{"token": secret, "apiToken": tokenView(*t)})
}

func (s *Server) apiRevokeToken(c *gin.Context) {
	if err := s.revokeToken(c); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}
