package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/setups"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// The Git routes: a project made from a repository pushes its work back to a branch of it and
// opens a pull request (ProjectPush), and merges a branch of it into its workspace
// (ProjectPull), the owner's only, under /api/v1/projects/{id}/ and
// /projects/{id}/ (the page's script).

const (
	maxCommitMessage = 10000 // characters
	maxPullTitle     = 256
	maxPullBody      = 60000
)

func (s *Server) gitRoutes(g *gin.RouterGroup) {
	g.GET("/git", s.apiGit)
	g.POST("/git/push", s.apiPush)
	g.POST("/git/pull", s.apiPull)
}

// gitView is a project's repository, its last push and its last pull as the API shows them.
type gitView struct {
	Repository  string           `json:"repository"` // the clone URL; empty: not made from a repository
	Ref         string           `json:"ref"`        // the branch or tag it was made from
	Branch      string           `json:"branch"`     // the branch pushes go to (the last one's, or the default)
	PullRequest *pullRequestView `json:"pullRequest,omitempty"`
	LastPush    *pushView        `json:"lastPush,omitempty"`
	LastPull    *pullView        `json:"lastPull,omitempty"`
}

type pullRequestView struct {
	URL    string `json:"url"`
	Number int64  `json:"number"`
}

type pushView struct {
	Status string    `json:"status"` // running, done or failed
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"` // when it started
	Commit string    `json:"commit,omitempty"`
}

// pullView is the last pull. Ahead and Behind count the commits of the workspace's HEAD not in
// the base and of the base not in HEAD, taken when the pull ended against the base as it then
// fetched it (Commit): later work in the workspace or on the forge is not in them.
type pullView struct {
	Status string    `json:"status"` // running, done or failed
	Error  string    `json:"error,omitempty"`
	At     time.Time `json:"at"`             // when it started
	Base   string    `json:"base,omitempty"` // empty until a pull of the default branch has found it
	Commit string    `json:"commit,omitempty"`
	Ahead  *int      `json:"ahead,omitempty"`
	Behind *int      `json:"behind,omitempty"`
}

func gitOf(p *store.Project) gitView {
	v := gitView{Repository: p.RepositoryURL, Ref: p.RepositoryRef, Branch: defaultBranch(p)}
	if p.PullRequestNumber != 0 {
		v.PullRequest = &pullRequestView{URL: p.PullRequestURL, Number: p.PullRequestNumber}
	}
	if p.PushStatus != "" && p.PushAt != nil {
		v.LastPush = &pushView{Status: string(p.PushStatus), Error: p.PushError, At: p.PushAt.UTC(), Commit: p.PushCommit}
	}
	if p.PullStatus != "" && p.PullAt != nil {
		v.LastPull = &pullView{Status: string(p.PullStatus), Error: p.PullError, At: p.PullAt.UTC(), Base: p.PullBase,
			Commit: p.PullCommit, Ahead: p.PullAhead, Behind: p.PullBehind}
	}
	return v
}

// defaultBranch is where a push goes when none is named: the branch pushed to last, else one
// of doce's own named after the project.
func defaultBranch(p *store.Project) string {
	if p.PushBranch != "" {
		return p.PushBranch
	}
	if b := "doce/" + p.Slug; repos.ValidateBranch(b) == nil {
		return b
	}
	return "doce/work"
}

func (s *Server) apiGit(c *gin.Context) {
	p := project(c)
	c.JSON(http.StatusOK, gin.H{"git": gitOf(p)})
}

// PushInput is the body of POST /git/push.
type PushInput struct {
	Branch      string `json:"branch"`
	Message     string `json:"message"`
	PullRequest *struct {
		Title string `json:"title"`
		Body  string `json:"body"`
		Base  string `json:"base"`
	} `json:"pullRequest"`
}

// apiPush starts pushing the project's work to a branch of its repository, and opening a pull
// request when asked. The answer comes once the push is recorded as running; GET /git follows it.
func (s *Server) apiPush(c *gin.Context) {
	p := project(c)
	var in PushInput
	if !bindJSONAs(c, s, &in) {
		return
	}
	if e := checkJSONText(&in); e != nil {
		s.fail(c, e)
		return
	}
	ctx := c.Request.Context()
	wf, err := s.pushInput(c, p, in)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Store.RecordPushStarted(ctx, p.ID, wf.Branch, time.Now()); errors.Is(err, store.ErrConflict) {
		s.fail(c, errPushRunning)
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Setups.Push(ctx, p, wf); err != nil {
		s.Log.Error("unable to start the push", "project_id", p.ID, "error", err)
		e := httperr.New(http.StatusServiceUnavailable, "push_not_started",
			"The push could not start: the workflow service is unreachable. Try again in a minute.")

		if errors.Is(err, setups.ErrPushRunning) {
			e = errPushRunning
		}
		if rerr := s.Store.RecordPush(ctx, p.ID, wf.Branch, store.PushOutcome{Status: store.PushFailed, Error: e.Message}); rerr != nil {
			s.Log.Warn("unable to record the push that did not start", "project_id", p.ID, "error", rerr)
		}
		s.fail(c, e)
		return
	}
	detail := "branch " + wf.Branch
	if wf.PullRequest != nil {
		detail += " with a pull request"
	}
	if err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: "project.push", TargetType: "project", TargetID: p.ID, Detail: detail}); err != nil {
		s.Log.Warn("unable to record the push", "project_id", p.ID, "error", err)
	}
	if p, err = s.Store.Project(ctx, p.ID); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"git": gitOf(p)})
}

var errPushRunning = httperr.New(http.StatusConflict, "push_running", "A push or pull of this project is running: wait until it ends.")

// PullInput is the body of POST /git/pull.
type PullInput struct {
	Base string `json:"base"`
}

// apiPull starts merging a branch of the project's repository (by default the one it was made
// from, else the repository's default) into its workspace. The answer comes once the pull is
// recorded as running; GET /git follows it.
func (s *Server) apiPull(c *gin.Context) {
	p := project(c)
	var in PullInput
	if !bindJSONAs(c, s, &in) {
		return
	}
	if e := checkJSONText(&in); e != nil {
		s.fail(c, e)
		return
	}
	if err := s.gitReady(c, p, "pull"); err != nil {
		s.fail(c, err)
		return
	}
	wf := workflows.PullInput{ProjectID: p.ID, RequestedBy: currentUser(c).ID, Base: strings.TrimSpace(in.Base)}
	if wf.Base == "" {
		wf.Base = p.RepositoryRef // the branch the project was made from; none: the repository's default
	} else if err := repos.ValidateBranch(wf.Base); err != nil {
		s.fail(c, httperr.Invalid("base", err.Error()))
		return
	}
	ctx := c.Request.Context()
	if err := s.Store.RecordPullStarted(ctx, p.ID, wf.Base, time.Now()); errors.Is(err, store.ErrConflict) {
		s.fail(c, errPushRunning)
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.Setups.Pull(ctx, p, wf); err != nil {
		s.Log.Error("unable to start the pull", "project_id", p.ID, "error", err)
		e := httperr.New(http.StatusServiceUnavailable, "pull_not_started",
			"The pull could not start: the workflow service is unreachable. Try again in a minute.")

		if errors.Is(err, setups.ErrPushRunning) {
			e = errPushRunning
		}
		if rerr := s.Store.RecordPull(ctx, p.ID, store.PullOutcome{Status: store.PushFailed, Error: e.Message}); rerr != nil {
			s.Log.Warn("unable to record the pull that did not start", "project_id", p.ID, "error", rerr)
		}
		s.fail(c, e)
		return
	}
	detail := "default branch"
	if wf.Base != "" {
		detail = "branch " + wf.Base
	}
	if err := s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: currentUser(c).ID, Action: "project.pull", TargetType: "project", TargetID: p.ID, Detail: detail}); err != nil {
		s.Log.Warn("unable to record the pull", "project_id", p.ID, "error", err)
	}
	if p, err := s.Store.Project(ctx, p.ID); err != nil {
		s.fail(c, err)
	} else {
		c.JSON(http.StatusAccepted, gin.H{"git": gitOf(p)})
	}
}

// gitReady refuses a push or pull (what) of a project not made from a repository, whose
// workspace is not running, or whose forge is not connected.
func (s *Server) gitReady(c *gin.Context, p *store.Project, what string) error {
	if p.RepositoryURL == "" {
		return httperr.New(http.StatusConflict, "no_repository",
			"This project was not made from a git repository, so there is nowhere to "+what+" from or to. Download it instead, or make a project from a repository.")

	}
	switch p.Status {
	case status.Ready:
	case status.Stopped, status.Stopping, status.Starting:
		return httperr.New(http.StatusConflict, "not_running", "The project's workspace is stopped: start it, then "+what+".")
	default:
		return httperr.New(http.StatusConflict, "not_ready", "The project's workspace is not ready yet: "+what+" once its setup has finished.")
	}
	conn, err := s.Store.ForgeForURL(c.Request.Context(), p.OwnerUserID, p.RepositoryURL)
	if err != nil {
		return err
	}
	if conn == nil {
		return httperr.New(http.StatusConflict, "no_forge",
			"Connect the forge of "+p.RepositoryURL+" under Settings → Forges, with a token that may "+what+", to "+what+" with it.")

	}
	return nil
}

// pushInput checks what the user asked against the project and fills in the defaults.
func (s *Server) pushInput(c *gin.Context, p *store.Project, in PushInput) (workflows.PushInput, error) {
	if err := s.gitReady(c, p, "push"); err != nil {
		return workflows.PushInput{}, err
	}

	out := workflows.PushInput{ProjectID: p.ID, RequestedBy: currentUser(c).ID, Branch: strings.TrimSpace(in.Branch)}
	if out.Branch == "" {
		out.Branch = defaultBranch(p)
	}
	if err := repos.ValidateBranch(out.Branch); err != nil {
		return workflows.PushInput{}, httperr.Invalid("branch", err.Error())
	}
	out.Message = strings.TrimSpace(in.Message)
	if out.Message == "" {
		out.Message = "Work on " + p.Name + " made in doce"
	}
	if e := freeText("message", out.Message, maxCommitMessage, true); e != nil {
		return workflows.PushInput{}, e
	}
	if in.PullRequest == nil {
		return out, nil
	}
	pr := &workflows.PullRequestInput{Title: strings.TrimSpace(in.PullRequest.Title), Body: strings.TrimSpace(in.PullRequest.Body), Base: strings.TrimSpace(in.PullRequest.Base)}
	if pr.Title == "" {
		pr.Title, _, _ = strings.Cut(out.Message, "\n")
		if utf8.RuneCountInString(pr.Title) > maxPullTitle {
			pr.Title = string([]rune(pr.Title)[:maxPullTitle])
		}
	}
	if e := freeText("pullRequest.title", pr.Title, maxPullTitle, false); e != nil {
		return workflows.PushInput{}, e
	}
	if e := freeText("pullRequest.body", pr.Body, maxPullBody, true); e != nil {
		return workflows.PushInput{}, e
	}
	if pr.Base == "" {
		pr.Base = p.RepositoryRef // the branch the project was made from; none: the repository's default
	} else if err := repos.ValidateBranch(pr.Base); err != nil {
		return workflows.PushInput{}, httperr.Invalid("pullRequest.base", err.Error())
	}
	if pr.Base == out.Branch {
		return workflows.PushInput{}, httperr.Invalid("branch", "A pull request needs a branch of its own: push to a branch other than its base ("+out.Branch+").")
	}
	out.PullRequest = pr
	return out, nil
}

// freeText checks a text field: at most limit characters, no control characters but (when
// lines) line breaks and tabs.
func freeText(field, s string, limit int, lines bool) *httperr.Error {
	if utf8.RuneCountInString(s) > limit {
		return httperr.Invalid(field, "Keep the "+field+" under "+strconv.Itoa(limit)+" characters.")
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !(lines && (r == '\n' || r == '\t' || r == '\r')) }) >= 0 {
		return httperr.Invalid(field, "The "+field+" holds control characters: send plain text.")
	}
	return nil
}
