package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// LoginInput starts signing in to a provider. EnterpriseURL is a GitHub Enterprise host
// ("company.ghe.com"), for providers that have them.
type LoginInput struct {
	EnterpriseURL string `json:"enterpriseUrl" form:"enterpriseUrl"`
}

// startLogin checks the request and starts the device login; the status it returns carries
// the user code once the provider gave one.
func (s *Server) startLogin(c *gin.Context, in LoginInput) (providers.Provider, workflows.LoginStatus, error) {
	prov, ok := providers.Lookup(c.Param("providerId"))
	if !ok {
		return prov, workflows.LoginStatus{}, httperr.NotFound("provider")
	}
	if prov.OAuth == nil {
		return prov, workflows.LoginStatus{}, httperr.Invalid("providerId", prov.Name+" has no sign-in; connect it with a key.")
	}
	if in.EnterpriseURL != "" {
		if !prov.OAuth.Enterprise {
			return prov, workflows.LoginStatus{}, httperr.Invalid("enterpriseUrl", prov.Name+" has no enterprise hosts; leave the field empty.")
		}
		if _, err := oauth.EnterpriseURL(in.EnterpriseURL); err != nil {
			return prov, workflows.LoginStatus{}, httperr.Invalid("enterpriseUrl", "Enter your GitHub Enterprise host, e.g. company.ghe.com (https).")
		}
	}
	u := currentUser(c)
	ctx := c.Request.Context()
	if existing, err := s.Store.Connection(ctx, u.ID, prov.ID); err == nil && existing.Status == store.ConnRevoked {
		return prov, workflows.LoginStatus{}, &httperr.Error{Status: http.StatusConflict, Code: "disconnecting", Field: "providerId",
			Message: prov.Name + " is being disconnected. Sign in again once that is done."}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return prov, workflows.LoginStatus{}, err
	}
	st, err := s.Setups.StartLogin(ctx, workflows.LoginInput{UserID: u.ID, ProviderID: prov.ID, Enterprise: in.EnterpriseURL}, 5*time.Second)
	if err != nil {
		return prov, st, err
	}
	s.Log.Info("sign-in started", "user_id", u.ID, "provider_id", prov.ID)
	return prov, st, nil
}

func (s *Server) loginStatus(c *gin.Context) (providers.Provider, workflows.LoginStatus, error) {
	prov, ok := providers.Lookup(c.Param("providerId"))
	if !ok || prov.OAuth == nil {
		return prov, workflows.LoginStatus{}, httperr.NotFound("sign-in")
	}
	st, err := s.Setups.LoginStatus(c.Request.Context(), currentUser(c).ID, prov.ID)
	if errors.Is(err, setups.ErrNoLogin) {
		return prov, st, httperr.NotFound("sign-in")
	}
	return prov, st, err
}

func (s *Server) apiStartLogin(c *gin.Context) {
	var in LoginInput
	if c.Request.ContentLength != 0 && !bindJSON(c, s, &in) {
		return
	}
	prov, st, err := s.startLogin(c, in)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/connections/oauth/"+prov.ID)
	c.JSON(http.StatusAccepted, gin.H{"login": st})
}

func (s *Server) apiLoginStatus(c *gin.Context) {
	_, st, err := s.loginStatus(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"login": st})
}

func (s *Server) loginSubmitOAuth(c *gin.Context) {
	var in LoginInput
	_ = c.ShouldBind(&in)
	prov, _, err := s.startLogin(c, in)
	if err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 || e.Status == http.StatusNotFound {
			s.fail(c, e)
			return
		}
		s.renderProviders(c, e.Status, e, ConnectInput{ProviderID: prov.ID})
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/providers/"+prov.ID+"/oauth")
}

// oauthPage follows a sign-in: the code to enter and where, then how it ended. While it
// waits, a script asks the status endpoint and reloads when the sign-in ends; without
// scripts the page reloads itself every two seconds.
func (s *Server) oauthPage(c *gin.Context) {
	prov, st, err := s.loginStatus(c)
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
