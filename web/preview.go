package web

import (
	"github.com/doce-dev/doce/httperr"

	"net/http"

	"github.com/gin-gonic/gin"
)

// previewRedirect (GET /projects/:id/preview, doce's origin, the owner's session) signs a
// one-time token and sends the browser to the preview origin to exchange it. The project page
// frames this address, and links to it for a new tab.
func (s *Server) previewRedirect(c *gin.Context) {
	if s.Preview == nil {
		s.fail(c, httperr.New(http.StatusNotFound, "previews_off", "Previews are off on this doce: its operator sets DOCE_PREVIEW_BASE_URL to turn them on."))
		return
	}
	p := project(c)
	sess, err := s.Store.SessionByToken(c.Request.Context(), s.readCookie(c, sessionCookie))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	c.Redirect(http.StatusSeeOther, s.Preview.OpenURL(p.ID, sess.UserID, sess.ID))
}
