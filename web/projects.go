package web

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/projects"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// ProjectView is a project as its owner sees it.
type ProjectView struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	Slug         string         `json:"slug"`
	Prompt       string         `json:"prompt"`
	ProviderID   string         `json:"providerId"`
	ModelID      string         `json:"modelId"`
	Status       status.Project `json:"status"`
	SetupStep    string         `json:"setupStep"`
	SetupAttempt int            `json:"setupAttempt"`
	SetupError   string         `json:"setupError,omitempty"`
	WorkflowID   string         `json:"workflowId"`
	TemporalURL  string         `json:"temporalUrl,omitempty"`
	// PreviewURL is the project's preview origin, where the app the agent serves is shown to
	// the owner; a browser signs in to it through /projects/{id}/preview. Empty: previews off.
	PreviewURL string              `json:"previewUrl,omitempty"`
	Progress   *workflows.Progress `json:"progress,omitempty"`
	CreatedAt  time.Time           `json:"createdAt"`
	// HostState is the state of the Docker host the workspace is on: "unreachable" while its
	// worker is gone (the project is kept; what it waits for carries on when the host is
	// back), "ready" otherwise; absent before the project is placed. Host names that host, for
	// administrators only.
	HostState string `json:"hostState,omitempty"`
	Host      string `json:"host,omitempty"`
	// Budget is where the project stands against its monthly budgets (single project reads only).
	Budget *BudgetView `json:"budget,omitempty"`
	// Egress is what the workspace reaches on the internet (docs/egress.md).
	Egress egressView `json:"egress"`
	// Repository is the git repository the project was made from, if any.
	Repository *projects.Repository `json:"repository,omitempty"`
	// Import is what the setup's clone of the repository received, once git reported it.
	Import *ImportView `json:"import,omitempty"`
}

// ImportView is what the clone of a project's repository received: objects of the total git
// announced, and bytes.
type ImportView struct {
	ReceivedObjects int64 `json:"receivedObjects"`
	TotalObjects    int64 `json:"totalObjects"`
	ReceivedBytes   int64 `json:"receivedBytes"`
}

// Received is the import as the setup page words it.
func (v ImportView) Received() string {
	if v.ReceivedObjects == v.TotalObjects {
		return fmt.Sprintf("received %d objects, %s", v.TotalObjects, humanBytes(v.ReceivedBytes))
	}
	return fmt.Sprintf("receiving: %d of %d objects, %s", v.ReceivedObjects, v.TotalObjects, humanBytes(v.ReceivedBytes))
}

// humanBytes is n in bytes, KiB, MiB or GiB, as git words them.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// projectView is p as the signed-in user of c sees it.
func (s *Server) projectView(c *gin.Context, p *store.Project) ProjectView {
	v := ProjectView{
		ID: p.ID, Name: p.Name, Slug: p.Slug, Prompt: p.Prompt, ProviderID: p.ProviderID, ModelID: p.ModelID,
		Status: p.Status, SetupStep: p.SetupStep, SetupAttempt: p.SetupAttempt, SetupError: p.SetupError, WorkflowID: p.WorkflowID, CreatedAt: p.CreatedAt,
		Egress: s.egressOf(p.EgressMode, p.EgressAllow),
	}
	if p.RepositoryURL != "" {
		v.Repository = &projects.Repository{URL: p.RepositoryURL, Ref: p.RepositoryRef}
	}
	if p.ImportTotalObjects > 0 {
		v.Import = &ImportView{ReceivedObjects: p.ImportObjects, TotalObjects: p.ImportTotalObjects, ReceivedBytes: p.ImportBytes}
	}
	if p.WorkflowID != "" {
		v.TemporalURL = s.Setups.RunURL(p.WorkflowID, "")
	}
	if s.Preview != nil {
		v.PreviewURL = s.Preview.URL(p.ID)
	}
	if s.Hosts != nil && p.Host != "" {
		// A drained host is the operators' business: its projects work as before.
		v.HostState = store.HostReady
		if s.Hosts.State(c.Request.Context(), p.Host) == store.HostUnreachable {
			v.HostState = store.HostUnreachable
		}
		if u := currentUser(c); u != nil && u.Role == store.RoleAdmin {
			v.Host = p.Host
		}
	}
	return v
}

func (s *Server) projectsPage(c *gin.Context) {
	s.renderProjects(c, http.StatusOK, nil, projects.CreateInput{})
}

func (s *Server) renderProjects(c *gin.Context, status int, formErr *httperr.Error, in projects.CreateInput) {
	u := currentUser(c)
	ctx := c.Request.Context()
	ps, err := s.Store.ProjectsByOwner(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	conns, err := s.Store.ConnectionsByUser(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	settings, err := s.Store.Settings(ctx, u.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]ConnectionView, 0, len(conns))
	for _, cn := range conns {
		views = append(views, connectionView(cn))
	}
	if in.ProviderID == "" {
		in.ProviderID = settings.PreferredProviderID
	}
	if in.RequestID == "" {
		in.RequestID = base64.RawURLEncoding.EncodeToString(store.RandomToken(16))
	}
	s.render(c, status, "projects.html", gin.H{"Title": "Projects", "Projects": ps, "Connections": views, "Form": in, "Error": formErr})
}

func (s *Server) createProjectSubmit(c *gin.Context) {
	var in projects.CreateInput
	_ = c.ShouldBind(&in)
	p, _, err := s.projects.Create(c.Request.Context(), currentUser(c), in)
	if err != nil {
		e := s.shown(c, err)
		if p != nil { // saved, setup not started: show it with the reason
			c.Redirect(http.StatusSeeOther, "/projects/"+p.ID)
			return
		}
		if e.Status >= 500 {
			s.fail(c, e)
			return
		}
		s.renderProjects(c, e.Status, e, in)
		return
	}
	c.Redirect(http.StatusSeeOther, "/projects/"+p.ID)
}

// withProject loads the caller's own project named by :id for every route under
// /projects/:id, pages and API alike. Anybody else's project is 404, admins' included.
func (s *Server) withProject(c *gin.Context) {
	p, err := s.Store.ProjectForOwner(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(c, httperr.NotFound("project"))
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	c.Set(projectKey, p)
}

const projectKey = "doce.project"

// project is the project withProject loaded for this request.
func project(c *gin.Context) *store.Project { return c.MustGet(projectKey).(*store.Project) }

func (s *Server) projectPage(c *gin.Context) {
	p := project(c)
	s.projects.EnsureRunning(c.Request.Context(), p)
	s.projects.RecordActivity(c.Request.Context(), p)
	v := s.projectView(c, p)
	v.Progress = s.projects.Progress(c.Request.Context(), p)
	if b, err := s.budgetView(c.Request.Context(), p); err == nil {
		v.Budget = b
	} else {
		s.Log.Warn("unable to read the project's budget", "project_id", p.ID, "error", err)
	}
	data := gin.H{
		"Title": p.Name, "Project": v,
		"Refresh": p.Status == status.Pending || p.Status == status.SettingUp ||
			p.Status == status.Stopping || p.Status == status.Starting,
		"Previews": s.Preview != nil,
	}
	if p.Status == status.Ready && s.events != nil {
		// ?session= picks the session shown; its messages come with the page when a hub holds
		// them (someone watches the project), else the page's script reads GET messages.
		sid := c.Query("session")
		if sid == "" {
			sid = p.OpenCodeSessionID
		}
		data["SessionID"] = sid
		if conv := s.events.Peek(p.ID, sid); conv != nil {
			data["Conversation"] = conv
		}
	}
	s.render(c, http.StatusOK, "project.html", data)
}

func (s *Server) apiProjects(c *gin.Context) {
	ps, err := s.Store.ProjectsByOwner(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	views := make([]ProjectView, 0, len(ps))
	for i := range ps {
		views = append(views, s.projectView(c, &ps[i]))
	}
	c.JSON(http.StatusOK, gin.H{"projects": views})
}

func (s *Server) apiCreateProject(c *gin.Context) {
	var in projects.CreateInput
	if !bindJSON(c, s, &in) {
		return
	}
	if in.RequestID == "" {
		in.RequestID = c.GetHeader("Idempotency-Key")
	}
	p, created, err := s.projects.Create(c.Request.Context(), currentUser(c), in)
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"project": s.projectView(c, p)})
}

func (s *Server) apiProject(c *gin.Context) {
	p := project(c)
	v := s.projectView(c, p)
	v.Progress = s.projects.Progress(c.Request.Context(), p)
	b, err := s.budgetView(c.Request.Context(), p)
	if err != nil {
		s.fail(c, err)
		return
	}
	v.Budget = b
	c.JSON(http.StatusOK, gin.H{"project": v})
}
