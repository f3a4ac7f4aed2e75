package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/egress"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

func egressDetail(mode string, allow []string) string {
	if mode == "" {
		mode = "default"
	}
	return "mode=" + mode + " allow=" + strings.Join(allow, ",")
}

// EgressDefaults is the operator's egress policy for projects (DOCE_WORKSPACE_EGRESS and
// DOCE_WORKSPACE_EGRESS_ALLOW).
type EgressDefaults struct {
	Mode  egress.Mode
	Allow []string
}

// egressView is a project's egress policy as the API shows it.
type egressView struct {
	// Mode is the project's own choice; empty: the operator's default.
	Mode string `json:"mode"`
	// Effective is the mode its workspace is under now.
	Effective string `json:"effective"`
	// Allow is the project's own allow list; OperatorAllow is reached by every allow-list
	// project.
	Allow         []string `json:"allow"`
	OperatorAllow []string `json:"operatorAllow"`
}

func (s *Server) egressOf(mode, allow string) egressView {
	v := egressView{Mode: mode, Effective: string(s.Egress.Mode), Allow: []string{}, OperatorAllow: s.Egress.Allow}
	if mode != "" {
		v.Effective = mode
	}
	if v.OperatorAllow == nil {
		v.OperatorAllow = []string{}
	}
	if list, err := egress.ParseAllowList(allow); err == nil && list != nil {
		v.Allow = list
	}
	return v
}

func (s *Server) apiProjectEgress(c *gin.Context) {
	p := project(c)
	c.JSON(http.StatusOK, gin.H{"egress": s.egressOf(p.EgressMode, p.EgressAllow)})
}

// apiSetProjectEgress sets what the project's workspace reaches; the egress proxy applies it
// to the workspace's next connection.
func (s *Server) apiSetProjectEgress(c *gin.Context) {
	p := project(c)
	var in struct {
		Mode  string   `json:"mode"`
		Allow []string `json:"allow"`
	}
	if !bindJSON(c, s, &in) {
		return
	}
	v, err := s.setEgress(c, p, in.Mode, in.Allow)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"egress": v})
}

// egressSubmit is the project page's form: a mode, and an allow list one host a line.
func (s *Server) egressSubmit(c *gin.Context) {
	p := project(c)
	if _, err := s.setEgress(c, p, c.PostForm("mode"), strings.Fields(c.PostForm("allow"))); err != nil {
		s.fail(c, err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/projects/"+p.ID+"#egress")
}

func (s *Server) setEgress(c *gin.Context, p *store.Project, mode string, list []string) (egressView, error) {
	if mode != "" {
		if _, err := egress.ParseMode(mode); err != nil {
			return egressView{}, httperr.Invalid("mode", "The egress mode must be open, allow-list or off (or empty for the operator's default).")
		}
	}
	if len(list) > egress.MaxAllowed {
		return egressView{}, httperr.Invalid("allow", "An allow list holds at most 100 hosts.")
	}
	allow, err := egress.ParseAllowList(strings.Join(list, ","))
	if err != nil {
		return egressView{}, httperr.Invalid("allow", "Each allowed host must be a host name (registry.npmjs.org), *.domain (*.pypi.org) or an IP address.")
	}
	joined := strings.Join(allow, ",")
	if err := s.Store.SetProjectEgress(c.Request.Context(), p.ID, mode, joined); err != nil {
		return egressView{}, err
	}
	if err := s.Store.Audit(c.Request.Context(), nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: "project.egress",
		TargetType: "project", TargetID: p.ID, Detail: egressDetail(mode, allow)}); err != nil {
		s.Log.Warn("unable to record the egress change", "project", p.ID, "error", err)
	}
	return s.egressOf(mode, joined), nil
}
