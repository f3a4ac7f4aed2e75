package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/projects"
	"github.com/doce-dev/doce/store"
)

// apiUserQuota is GET /api/v1/users/{id}/quotas.
func (s *Server) apiUserQuota(c *gin.Context) {
	ctx := c.Request.Context()
	if _, err := s.Store.UserByID(ctx, c.Param("id")); errors.Is(err, store.ErrNotFound) {
		s.fail(c, httperr.NotFound("user"))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	v, err := s.projects.QuotaOf(ctx, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// apiSetUserQuota is PUT /api/v1/users/{id}/quotas.
func (s *Server) apiSetUserQuota(c *gin.Context) {
	var in projects.QuotaInput
	if !bindJSON(c, s, &in) {
		return
	}
	if err := s.projects.SetQuota(c.Request.Context(), currentUser(c).ID, c.Param("id"), in); err != nil {
		s.fail(c, err)
		return
	}
	s.apiUserQuota(c)
}

// userQuotaSubmit is the users page's form: an empty field keeps the default.
func (s *Server) userQuotaSubmit(c *gin.Context) {
	var in projects.QuotaInput
	for _, f := range []struct {
		name string
		to   **int
	}{{"projects", &in.Projects}, {"running", &in.Running}, {"createPerHour", &in.CreatePerHour}} {
		raw := strings.TrimSpace(c.PostForm(f.name))
		if raw == "" {
			continue
		}
		n, err := strconv.Atoi(raw)
		if err != nil {
			s.fail(c, projects.ErrQuotaValue(f.name))
			return
		}
		*f.to = &n
	}
	if err := s.projects.SetQuota(c.Request.Context(), currentUser(c).ID, c.Param("id"), in); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/admin/users")
}
