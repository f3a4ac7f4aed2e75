// Package projects is what doce does with a project, whoever asks: creating one (checking the
// request, naming it, holding its owner to their quotas, claiming a prebuilt workspace and
// starting its setup), reading where its setup stands, and bringing its workspace back when
// someone opens it. It takes a context.Context and plain values and knows nothing of HTTP: its
// refusals are httperr errors the caller shows as they are. Temporal is reached through the
// setups package.
package projects

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/catalog"
	"github.com/doce-dev/doce/hosts"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Service acts on projects. Its exported fields are its dependencies, set before first use.
type Service struct {
	Store  *store.Store
	Setups *setups.Service
	// Hosts, when set, knows the Docker hosts: a new project is refused while all are full.
	Hosts *hosts.Registry
	// Catalog is each user's OpenCode model catalog: the models a project may pick.
	Catalog *catalog.Catalog
	Metrics *metrics.Metrics // when set, setups started are counted
	Log     *slog.Logger
	// PoolImage, when set, lets new projects claim a prebuilt workspace on that image.
	PoolImage string
	// AgentAsk and GatewayURL are part of a project's OpenCode configuration, which a prebuilt
	// workspace it claims must have loaded (DOCE_AGENT_ASK, DOCE_GATEWAY_URL).
	AgentAsk   []string
	GatewayURL string
	// Quotas bound each user's projects and running workspaces.
	Quotas Quotas
	// OnRunning, when set, hears that a project's workspace is where the database says after
	// EnsureRunning (a container Docker restarted is on new ports).
	OnRunning func(projectID string)

	once sync.Once
	// progress shares running setups' progress queries among callers, by project id.
	progress *otter.Cache[string, *workflows.Progress]
	// ensuring is, by project id, when EnsureRunning's last ask ended (zero: under way).
	ensureMu sync.Mutex
	ensuring map[string]time.Time
}

func (s *Service) init() {
	s.once.Do(func() {
		s.progress = otter.Must(&otter.Options[string, *workflows.Progress]{
			MaximumSize: 10_000, ExpiryCalculator: otter.ExpiryWriting[string, *workflows.Progress](progressMaxAge)})
		s.ensuring = map[string]time.Time{}
	})
}

// CreateInput is what creating a project takes, from the form or the API.
type CreateInput struct {
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

// MaxPromptLen bounds a prompt, the project's first and every later one, in characters.
const MaxPromptLen = 20000

// Create validates in, stores u's project and starts its ProjectSetup workflow. created is
// false when in.RequestID named a project made before. A project saved whose setup could not
// start comes back with the error saying so.
func (s *Service) Create(ctx context.Context, u *store.User, in CreateInput) (p *store.Project, created bool, err error) {
	if len(in.RequestID) > 100 || !utf8.ValidString(in.RequestID) || strings.IndexFunc(in.RequestID, unicode.IsControl) >= 0 {
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
	case utf8.RuneCountInString(in.Prompt) > MaxPromptLen:
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
		if err := s.CheckCreate(ctx, u.ID); err != nil {
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
	models := s.ModelIDs(&conn)
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

// ModelIDs are the model ids offered for a provider: a custom or well-known connection's own
// list, else OpenCode's catalog once read, else doce's built-in suggestions (the create-project
// form can come before any workspace exists).
func (s *Service) ModelIDs(conn *store.ProviderConnection) []string {
	if ms := conn.Models(); len(ms) > 0 {
		return ms
	}
	if s.Catalog != nil {
		if ms, ok := s.Catalog.Models(conn.UserID, conn.ProviderID); ok && len(ms) > 0 {
			ids := make([]string, len(ms))
			for i, m := range ms {
				ids[i] = m.ID
			}
			return ids
		}
	}
	prov, _ := providers.Lookup(conn.ProviderID)
	return prov.Models
}

// poolClaim says which prebuilt workspaces p may claim: one whose OpenCode loaded p's own
// configuration (ready at once), else one on the base configuration (rewritten and reloaded);
// never one made for a configuration of someone else's. nil without a pool, or for a project
// made from a repository.
func (s *Service) poolClaim(p *store.Project, conn *store.ProviderConnection) (*store.PoolClaim, error) {
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

var nonSlug = regexp.MustCompile(`[^a-z0-9]+`)

// slugify is name in lower-case letters, digits and dashes, at most 40 bytes.
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

// nameFromPrompt is the prompt's first words, up to 50 characters.
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
