package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// PasswordInput changes the signed-in user's password.
type PasswordInput struct {
	Current string `json:"currentPassword" form:"currentPassword"`
	New     string `json:"newPassword" form:"newPassword"`
}

// changePassword sets a new password after checking the current one, which is throttled like a
// sign-in (a stolen session must not become a way to guess the password), and ends every other
// session and every API token of the user: whoever held the old password is out.
func (s *Server) changePassword(c *gin.Context, in PasswordInput) error {
	if currentToken(c) != nil {
		// A password change ends every API token; and a token holder must not take over the
		// account by guessing, or knowing, its password.
		return httperr.New(http.StatusForbidden, "token_cannot_change_password", "API tokens cannot change passwords. Sign in with your password to change it.")
	}
	u := currentUser(c)
	ctx := c.Request.Context()
	keys, _ := s.loginKeys(c, u.Username, u)
	if wait, err := s.Store.LoginLockedFor(ctx, time.Now(), keys...); err != nil {
		return err
	} else if wait > 0 {
		c.Header("Retry-After", retryAfter(wait))
		return errThrottled(wait)
	}
	if ok, _, err := store.CheckPassword(u.PasswordHash, in.Current); err != nil && !errors.Is(err, store.ErrPasswordReset) {
		return err
	} else if !ok {
		s.loginFailed(c, keys)
		return httperr.Invalid("currentPassword", "That is not your current password.")
	}
	if e := validateCredentials(u.Username, in.New); e != nil {
		e.Field = "newPassword"
		return e
	}
	hash, err := store.HashPassword(in.New)
	if err != nil {
		return err
	}
	keep := ""
	if sess, err := s.Store.SessionByToken(ctx, s.readCookie(c, sessionCookie)); err == nil {
		keep = sess.ID
	}
	_, _, err = s.Store.ChangePassword(ctx, u.ID, hash, keep)
	return err
}

func (s *Server) accountPage(c *gin.Context) {
	s.renderAccount(c, http.StatusOK, gin.H{"Done": c.Query("done") != "", "Revoked": c.Query("revoked") != ""})
}

func (s *Server) accountSubmit(c *gin.Context) {
	var in PasswordInput
	_ = c.ShouldBind(&in)
	if err := s.changePassword(c, in); err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderAccount(c, e.Status, gin.H{"Error": e})
		return
	}
	c.Redirect(http.StatusSeeOther, "/account?done=1")
}

func (s *Server) apiChangePassword(c *gin.Context) {
	var in PasswordInput
	if !bindJSON(c, s, &in) {
		return
	}
	if err := s.changePassword(c, in); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}

// NewUserInput is what an administrator gives to create a user.
type NewUserInput struct {
	Username string `json:"username" form:"username"`
	Password string `json:"password" form:"password"`
	Admin    bool   `json:"admin" form:"admin"`
}

// UserView is a user as administrators see them.
type UserView struct {
	ID         string     `json:"id"`
	Username   string     `json:"username"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"createdAt"`
	DisabledAt *time.Time `json:"disabledAt,omitempty"`
}

func userView(u store.User) UserView {
	return UserView{ID: u.ID, Username: u.Username, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt}
}

func (s *Server) createUser(c *gin.Context, in NewUserInput) (*store.User, error) {
	in.Username = strings.TrimSpace(in.Username)
	if e := validateCredentials(in.Username, in.Password); e != nil {
		return nil, e
	}
	hash, err := store.HashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Username: in.Username, PasswordHash: hash, Role: store.RoleUser}
	if in.Admin {
		u.Role = store.RoleAdmin
	}
	if err := s.Store.AddUser(c.Request.Context(), u, currentUser(c).ID); errors.Is(err, store.ErrConflict) {
		return nil, &httperr.Error{Status: http.StatusConflict, Code: "username_taken", Field: "username", Message: "That username is taken. Pick another."}
	} else if err != nil {
		return nil, err
	}
	return u, nil
}

func (s *Server) disableUser(c *gin.Context) error {
	id := c.Param("id")
	if id == currentUser(c).ID {
		return httperr.Invalid("", "You cannot disable yourself.")
	}
	if err := s.Store.DisableUser(c.Request.Context(), id, currentUser(c).ID); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("active user")
	} else if err != nil {
		return err
	}
	return nil
}

func (s *Server) usersPage(c *gin.Context) {
	s.renderUsers(c, http.StatusOK, nil, NewUserInput{})
}

func (s *Server) renderUsers(c *gin.Context, status int, formErr *httperr.Error, in NewUserInput) {
	us, err := s.Store.Users(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	lockouts, err := s.lockouts(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	budgets, err := s.Store.Budgets(c.Request.Context(), store.BudgetUser)
	if err != nil {
		s.fail(c, err)
		return
	}
	defaults, err := s.Store.Budgets(c.Request.Context(), store.BudgetDefault)
	if err != nil {
		s.fail(c, err)
		return
	}
	budgetUSD := map[string]string{}
	for id, n := range budgets {
		budgetUSD[id] = strconv.FormatFloat(dollars(n), 'f', 2, 64)
	}
	defaultUSD := ""
	if n, ok := defaults[""]; ok {
		defaultUSD = strconv.FormatFloat(dollars(n), 'f', 2, 64)
	}
	quotas, err := s.Store.UserQuotas(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	in.Password, in.Username = "", echo(in.Username, 64)
	s.render(c, status, "users.html", gin.H{"Title": "Users", "Users": us, "Form": in, "Error": formErr, "Lockouts": lockouts, "Now": time.Now(),
		"Budgets": budgetUSD, "DefaultBudget": defaultUSD, "Quotas": quotas, "DefaultQuotas": s.Quotas})
}

func (s *Server) usersSubmit(c *gin.Context) {
	var in NewUserInput
	_ = c.ShouldBind(&in)
	if _, err := s.createUser(c, in); err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderUsers(c, e.Status, e, in)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}

func (s *Server) disableSubmit(c *gin.Context) {
	if err := s.disableUser(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}

func (s *Server) apiUsers(c *gin.Context) {
	us, err := s.Store.Users(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]UserView, 0, len(us))
	for _, u := range us {
		out = append(out, userView(u))
	}
	c.JSON(http.StatusOK, gin.H{"users": out})
}

func (s *Server) apiCreateUser(c *gin.Context) {
	var in NewUserInput
	if !bindJSON(c, s, &in) {
		return
	}
	u, err := s.createUser(c, in)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"user": userView(*u)})
}

func (s *Server) apiDisableUser(c *gin.Context) {
	if err := s.disableUser(c); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"ok": true})
}
