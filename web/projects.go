package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// CreateProjectInput is what creating a project takes, from the form or the API.
type CreateProjectInput struct {
	Name       string `json:"name" form:"name"`
	Prompt     string `json:"prompt" form:"prompt"`
	ProviderID string `json:"providerId" form:"providerId"`
	ModelID    string `json:"modelId" form:"modelId"`
	// RequestID makes the create idempotent: the form carries one per render, API clients send
	// one in the body or the Idempotency-Key header. A repeat returns the first project.
	RequestID string `json:"requestId" form:"requestId"`
	// Repository, when set, is a git repository to make the project from: setup clones it into
	// the workspace, with the token of the owner's forge connection its URL is under. The page's
	// form names its fields flat (RepositoryURL, RepositoryRef).
	Repository    *Repository `json:"repository" form:"-"`
	RepositoryURL string      `json:"-" form:"repositoryUrl"`
	RepositoryRef string      `json:"-" form:"repositoryRef"`
}

// Repository is a git repository a project is made from: an http(s) clone URL and a branch or
// tag (empty: the default branch).
type Repository struct {
	URL string `json:"url"`
	Ref string `json:"ref,omitempty"`
}

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
	Repository *Repository `json:"repository,omitempty"`
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

const maxPromptLen = 20000

// projectView is p as the signed-in user of c sees it.
func (s *Server) projectView(c *gin.Context, p *store.Project) ProjectView {
	v := ProjectView{
		ID: p.ID, Name: p.Name, Slug: p.Slug, Prompt: p.Prompt, ProviderID: p.ProviderID, ModelID: p.ModelID,
		Status: p.Status, SetupStep: p.SetupStep, SetupAttempt: p.SetupAttempt, SetupError: p.SetupError, WorkflowID: p.WorkflowID, CreatedAt: p.CreatedAt,
		Egress: s.egressOf(p.EgressMode, p.EgressAllow),
	}
	if p.RepositoryURL != "" {
		v.Repository = &Repository{URL: p.RepositoryURL, Ref: p.RepositoryRef}
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

// createProject validates in, stores the project and starts its ProjectSetup workflow. created
// is false when in.RequestID named a project made before.
func (s *Server) createProject(c *gin.Context, u *store.User, in CreateProjectInput) (p *store.Project, created bool, err error) {
	ctx := c.Request.Context()
	if len(in.RequestID) > 100 || textProblem(in.RequestID, 100) != "" || strings.IndexFunc(in.RequestID, unicode.IsControl) >= 0 {
		return nil, false, httperr.Invalid("requestId", "Use a request id (or Idempotency-Key) of at most 100 printable characters.")
	}
	if in.Repository != nil {
		in.RepositoryURL, in.RepositoryRef = in.Repository.URL, in.Repository.Ref
	}
	if strings.TrimSpace(in.RepositoryURL) != "" {
		u, err := repos.ValidateURL(in.RepositoryURL)
		if err != nil {
			return nil, false, httperr.Invalid("repositoryUrl", err.Error())
		}
		in.RepositoryURL, in.RepositoryRef = u, strings.TrimSpace(in.RepositoryRef)
		if err := repos.ValidateRef(in.RepositoryRef); err != nil {
			return nil, false, httperr.Invalid("repositoryRef", err.Error())
		}
	} else {
		in.RepositoryURL, in.RepositoryRef = "", ""
	}
	in.Prompt = strings.TrimSpace(in.Prompt)
	switch {
	case in.Prompt == "" && in.RepositoryURL == "":
		return nil, false, httperr.Invalid("prompt", "Describe what the project should build, or make it from a repository.")
	case utf8.RuneCountInString(in.Prompt) > maxPromptLen:
		return nil, false, httperr.Invalid("prompt", "Keep the prompt under 20,000 characters.")
	case !utf8.ValidString(in.Prompt):
		return nil, false, httperr.Invalid("prompt", "The prompt is not valid UTF-8 text.")
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" && in.Prompt == "" {
		in.Name = repos.Name(in.RepositoryURL)
	} else if in.Name == "" {
		in.Name = nameFromPrompt(in.Prompt)
	}
	if utf8.RuneCountInString(in.Name) > 100 || strings.IndexFunc(in.Name, unicode.IsControl) >= 0 {
		return nil, false, httperr.Invalid("name", "Use a name of at most 100 characters, without control characters.")
	}

	// A repeated request gets its project back whatever the quotas say now.
	if earlier, err := s.Store.ProjectByRequest(ctx, u.ID, in.RequestID); err != nil {
		return nil, false, err
	} else if earlier == nil {
		if err := s.checkCreate(c, u.ID); err != nil {
			return nil, false, err
		}
	}
	conns, err := s.Store.ConnectionsByUser(ctx, u.ID)
	if err != nil {
		return nil, false, err
	}
	if len(conns) == 0 {
		return nil, false, &httperr.Error{Status: http.StatusConflict, Code: "no_provider", Field: "providerId",
			Message: "Connect a provider on the Providers page first."}
	}
	if in.ProviderID == "" {
		settings, err := s.Store.Settings(ctx, u.ID)
		if err != nil {
			return nil, false, err
		}
		in.ProviderID = settings.PreferredProviderID
	}
	i := slices.IndexFunc(conns, func(cn store.ProviderConnection) bool { return cn.ProviderID == in.ProviderID })
	if i < 0 {
		return nil, false, httperr.Invalid("providerId", "That provider is not connected. Pick a connected provider or connect it on the Providers page.")
	}
	conn := conns[i]
	models := s.providerModelIDs(&conn)
	in.ModelID = strings.TrimSpace(in.ModelID)
	if in.ModelID == "" && len(models) > 0 {
		in.ModelID = models[0]
	}
	if (conn.ProviderID == providers.CustomID || conn.ProviderID == providers.WellKnownID) && !slices.Contains(models, in.ModelID) {
		return nil, false, httperr.Invalid("modelId", "Pick one of the models this provider serves: "+strings.Join(models, ", ")+".")
	}
	if in.ModelID == "" || len(in.ModelID) > 200 || strings.IndexFunc(in.ModelID, unicode.IsControl) >= 0 {
		return nil, false, httperr.Invalid("modelId", "Enter the model id to use, e.g. "+strings.Join(models, ", ")+".")
	}

	p = &store.Project{
		OwnerUserID: u.ID, Name: in.Name, Slug: slugify(in.Name), Prompt: in.Prompt,
		ProviderID: conn.ProviderID, ModelID: in.ModelID, RequestID: in.RequestID,
		RepositoryURL: in.RepositoryURL, RepositoryRef: in.RepositoryRef,
	}
	pool, err := s.poolClaim(p, &conn)
	if err != nil {
		return nil, false, err
	}
	if p, created, err = s.Store.CreateProject(ctx, p, pool); err != nil {
		return nil, false, err
	}
	if p.WorkflowID != "" {
		return p, created, nil // a repeat of a create whose setup started
	}
	// Starting is idempotent too: the workflow id is the project's, and a running run is reused.
	if err := s.Setups.Start(ctx, p, u.ID); err != nil {
		s.Log.Error("unable to start project setup", "project_id", p.ID, "error", err)
		return p, created, httperr.New(http.StatusServiceUnavailable, "setup_not_started",
			"The project was saved but its setup could not start: the workflow service is unreachable. Try again in a minute.")

	}
	if created && s.Metrics != nil {
		s.Metrics.SetupsStarted.WithLabelValues(p.ProviderID).Inc()
	}
	if created && p.ContainerID != "" { // it claimed a prebuilt workspace
		if err := s.Setups.WakePool(ctx, p.Host); err != nil {
			s.Log.Warn("unable to wake the workspace pool; it refills at its next round", "error", err)
		}
	}
	return p, created, nil
}

// poolClaim says which prebuilt workspaces p may claim: one whose OpenCode loaded p's own
// configuration (ready at once), else one on the base configuration (rewritten and reloaded);
// never one made for a configuration of someone else's. nil without a pool, or for a project
// made from a repository.
func (s *Server) poolClaim(p *store.Project, conn *store.ProviderConnection) (*store.PoolClaim, error) {
	// A prebuilt workspace made /workspace a repository of its own when it started: a project
	// from a repository needs a fresh one, which waits for it.
	if s.PoolImage == "" || p.RepositoryURL != "" {
		return nil, nil
	}
	config, err := agent.Config(p, conn, s.AgentAsk, s.GatewayURL)
	if err != nil {
		return nil, err
	}
	return &store.PoolClaim{Image: s.PoolImage, Configs: []string{agent.ConfigSum(config), agent.ConfigSum(agent.BaseConfig(s.AgentAsk))}}, nil
}

// progress is the setup's step table: from the database once the setup has finished (or
// stopped at a failed step), from the running workflow otherwise, asked at most once per
// progressMaxAge per project however many tabs watch it. nil when nobody can answer now.
func (s *Server) progress(ctx context.Context, p *store.Project) *workflows.Progress {
	if p.WorkflowID == "" {
		return nil
	}
	switch p.Status {
	case status.Ready, status.SetupFailed, status.Cancelled, status.Deleting, status.Deleted:
		if p.SetupProgress != "" {
			var pr workflows.Progress
			if err := json.Unmarshal([]byte(p.SetupProgress), &pr); err == nil {
				return &pr
			}
		}
		if p.Status == status.Ready { // finished before its table was recorded
			return workflows.CompletedProgress()
		}
	}
	return s.liveProgress(ctx, p.ID)
}

// progressMaxAge is how old a running setup's step table may be when a page or stream shows it.
const progressMaxAge = 500 * time.Millisecond

// liveProgress asks the running workflow, sharing one query per project among all callers. A
// failed query is kept as nil for progressMaxAge too: it is not asked again at once.
func (s *Server) liveProgress(ctx context.Context, projectID string) *workflows.Progress {
	pr, _ := s.progressCache.Get(context.WithoutCancel(ctx), projectID, otter.LoaderFunc[string, *workflows.Progress](
		func(ctx context.Context, id string) (*workflows.Progress, error) {
			pr, err := s.Setups.Progress(ctx, id)
			if err != nil {
				s.Log.Warn("progress query failed", "project_id", id, "error", err)
				return nil, nil
			}
			return pr, nil
		}))
	return pr
}

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

func slugify(name string) string {
	s := strings.Trim(nonSlug.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 40 {
		s = strings.TrimRight(s[:40], "-")
	}
	if s == "" {
		s = "project"
	}
	return s
}

func nameFromPrompt(prompt string) string {
	words := strings.Fields(prompt)
	name := ""
	for _, w := range words {
		if utf8.RuneCountInString(name)+utf8.RuneCountInString(w) > 50 {
			break
		}
		name = strings.TrimSpace(name + " " + w)
	}
	if name == "" {
		name = "Untitled project"
	}
	return name
}

func (s *Server) projectsPage(c *gin.Context) {
	s.renderProjects(c, http.StatusOK, nil, CreateProjectInput{})
}

func (s *Server) renderProjects(c *gin.Context, status int, formErr *httperr.Error, in CreateProjectInput) {
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
	var in CreateProjectInput
	_ = c.ShouldBind(&in)
	p, _, err := s.createProject(c, currentUser(c), in)
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

// ensureRunning starts the project's workspace again in the background if it stopped, or finds
// where Docker restarted it; opening a project is the moment its owner wants it up. One ask at a time per project, and none within ensureEvery
// of the last answer, so a page reloaded over and over does not start a workflow each time.
func (s *Server) ensureRunning(ctx context.Context, p *store.Project) {
	if p.Status != status.Ready {
		return
	}
	s.ensureMu.Lock()
	last, asked := s.ensuring[p.ID]
	if asked && (last.IsZero() || time.Since(last) < ensureEvery) {
		s.ensureMu.Unlock()
		return
	}
	s.ensuring[p.ID] = time.Time{} // under way
	s.ensureMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		err := s.Setups.EnsureRunning(ctx, p)
		s.ensureMu.Lock()
		s.ensuring[p.ID] = time.Now()
		s.ensureMu.Unlock()
		if err != nil {
			s.Log.Warn("unable to ensure the workspace runs", "project_id", p.ID, "error", err)
			return
		}
		// The workspace answers where the database says now: the hub need not wait out its
		// backoff to find it (a container Docker restarted is on new ports).
		if s.events != nil {
			s.events.Reconnect(p.ID)
		}
	}()
}

// ensureEvery is how soon after an ask ends ensureRunning may ask again for the same project.
const ensureEvery = 2 * time.Second

// recordActivity tells the ready project's idle watch that someone has it open, in the
// background: the page does not wait for Temporal. setups.Service signals at most once a minute
// per project, so a page under load costs a map lookup.
func (s *Server) recordActivity(c *gin.Context, p *store.Project) {
	if p.Status != status.Ready {
		return
	}
	ctx := context.WithoutCancel(c.Request.Context())
	go func() {
		if err := s.Setups.RecordActivity(ctx, p); err != nil {
			s.Log.Warn("unable to record workspace activity", "project_id", p.ID, "error", err)
		}
	}()
}

func (s *Server) projectPage(c *gin.Context) {
	p := project(c)
	s.ensureRunning(c.Request.Context(), p)
	s.recordActivity(c, p)
	v := s.projectView(c, p)
	v.Progress = s.progress(c.Request.Context(), p)
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
	var in CreateProjectInput
	if !bindJSON(c, s, &in) {
		return
	}
	if in.RequestID == "" {
		in.RequestID = c.GetHeader("Idempotency-Key")
	}
	p, created, err := s.createProject(c, currentUser(c), in)
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
	v.Progress = s.progress(c.Request.Context(), p)
	b, err := s.budgetView(c.Request.Context(), p)
	if err != nil {
		s.fail(c, err)
		return
	}
	v.Budget = b
	c.JSON(http.StatusOK, gin.H{"project": v})
}
