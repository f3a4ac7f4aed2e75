package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/connections"
	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// ForgeView is a forge connection as its owner sees it: never the token, only a hint.
type ForgeView struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Forge       string `json:"forgeName"`
	BaseURL     string `json:"baseURL"`
	Account     string `json:"account"`
	AccountName string `json:"accountName,omitempty"`
	DisplayHint string `json:"displayHint"`
	// Status is "connected", or "needs-token" once the forge refused the token on a push, pull
	// or import (at TokenRefusedAt) until it is replaced.
	Status         string     `json:"status"`
	TokenRefusedAt *time.Time `json:"tokenRefusedAt,omitempty"`
	CreatedAt      time.Time  `json:"createdAt"`
}

func forgeView(f store.ForgeConnection) ForgeView {
	v := ForgeView{ID: f.ID, Kind: f.Kind, Forge: forges.Name(f.Kind), BaseURL: f.BaseURL, Account: f.AccountLogin,
		AccountName: f.AccountName, DisplayHint: f.DisplayHint, Status: "connected", TokenRefusedAt: f.TokenRefusedAt, CreatedAt: f.CreatedAt}
	if f.TokenRefusedAt != nil {
		v.Status = "needs-token"
	}
	return v
}

// disconnectForge deletes the caller's forge connection named in the path.
func (s *Server) disconnectForge(c *gin.Context) error {
	return s.connections.DisconnectForge(c.Request.Context(), currentUser(c), c.Param("id"))
}

func (s *Server) forgeViews(c *gin.Context) ([]ForgeView, error) {
	fs, err := s.Store.ForgeConnectionsByUser(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		return nil, err
	}
	views := make([]ForgeView, 0, len(fs))
	for _, f := range fs {
		views = append(views, forgeView(f))
	}
	return views, nil
}

func (s *Server) apiForges(c *gin.Context) {
	views, err := s.forgeViews(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"forges": views})
}

func (s *Server) apiConnectForge(c *gin.Context) {
	var in connections.ForgeInput
	if !bindJSON(c, s, &in) {
		return
	}
	f, replaced, err := s.connections.ConnectForge(c.Request.Context(), currentUser(c), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if replaced {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"forge": forgeView(*f)})
}

func (s *Server) apiDisconnectForge(c *gin.Context) {
	if err := s.disconnectForge(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) forgesPage(c *gin.Context) {
	s.renderForges(c, http.StatusOK, nil, connections.ForgeInput{Kind: forges.GitHub})
}

func (s *Server) renderForges(c *gin.Context, status int, formErr *httperr.Error, in connections.ForgeInput) {
	views, err := s.forgeViews(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	in.Token = "" // never echo a secret back into the form
	s.render(c, status, "forges.html", gin.H{"Title": "Git forges", "Forges": views, "Kinds": forges.Kinds, "Form": in, "Error": formErr})
}

func (s *Server) connectForgeSubmit(c *gin.Context) {
	var in connections.ForgeInput
	_ = c.ShouldBind(&in) // absent fields stay empty and fail validation
	if _, _, err := s.connections.ConnectForge(c.Request.Context(), currentUser(c), in); err != nil {
		e := s.shown(c, err)
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderForges(c, e.Status, e, in)
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/forges")
}

func (s *Server) disconnectForgeSubmit(c *gin.Context) {
	if err := s.disconnectForge(c); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/settings/forges")
}
