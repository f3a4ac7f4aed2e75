package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/connections"
	"github.com/doce-dev/doce/workflows"
)

// LoginInput starts signing in to a provider. EnterpriseURL is a GitHub Enterprise host
// ("company.ghe.com"), for providers that have them.
type LoginInput struct {
	EnterpriseURL string `json:"enterpriseUrl" form:"enterpriseUrl"`
}

func (s *Server) apiStartLogin(c *gin.Context) {
	var in LoginInput
	if c.Request.ContentLength != 0 && !bindJSON(c, s, &in) {
		return
	}
	prov, st, err := s.connections.SignIn(c.Request.Context(), currentUser(c), c.Param("providerId"), in.EnterpriseURL)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/connections/oauth/"+prov.ID)
	c.JSON(http.StatusAccepted, gin.H{"login": st})
}

func (s *Server) apiLoginStatus(c *gin.Context) {
	_, st, err := s.connections.SignInStatus(c.Request.Context(), currentUser(c), c.Param("providerId"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"login": st})
}

func (s *Server) loginSubmitOAuth(c *gin.Context) {
	var in LoginInput
	_ = c.ShouldBind(&in)
	prov, _, err := s.connections.SignIn(c.Request.Context(), currentUser(c), c.Param("providerId"), in.EnterpriseURL)
	if err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 || e.Status == http.StatusNotFound {
			s.fail(c, e)
			return
		}
		s.renderProviders(c, e.Status, e, connections.Input{ProviderID: prov.ID})
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/providers/"+prov.ID+"/oauth")
}

// oauthPage follows a sign-in: the code to enter and where, then how it ended. While it
// waits, a script asks the status endpoint and reloads when the sign-in ends; without
// scripts the page reloads itself every two seconds.
func (s *Server) oauthPage(c *gin.Context) {
	prov, st, err := s.connections.SignInStatus(c.Request.Context(), currentUser(c), c.Param("providerId"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "oauth.html", gin.H{
		"Title": prov.OAuth.Label, "Provider": prov, "Login": st,
		// While the user has not finished, the page follows the sign-in (see the layout).
		"Refresh": st.State == workflows.LoginStarting || st.State == workflows.LoginWaiting,
	})
}
