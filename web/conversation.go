package web

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/hub"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/projects"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
)

// The conversation routes (docs/conversation.md). Each is served under /api/v1/projects/{id}/
// and under /projects/{id}/ for the page, with the same handler; both answer JSON.

const (
	streamPing     = 15 * time.Second
	streamLifetime = 30 * time.Minute // then the browser reconnects, resuming from its last event
)

var (
	errUnknownSession = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Field: "session", Message: "No such session in this project."}
	errWorkspaceDown  = httperr.New(http.StatusServiceUnavailable, "workspace_unavailable",
		"The workspace is stopped or starting; it is being started. Try again in a few seconds.")

	errNotReady = httperr.New(http.StatusConflict, "not_ready",
		"The project's setup has not finished: its conversation opens once the setup is done.")

	validRequestID = regexp.MustCompile(`^[A-Za-z0-9_]{1,100}$`)
)

// readyProject is the request's project when it is ready for a conversation.
func (s *Server) readyProject(c *gin.Context) (*store.Project, bool) {
	p := project(c)
	if p.Status != status.Ready || s.events == nil {
		s.fail(c, errNotReady)
		return nil, false
	}
	return p, true
}

// chatSession is readyProject and the session the request is about: ?session=, else the one
// the setup opened.
func (s *Server) chatSession(c *gin.Context) (*store.Project, string, bool) {
	p, ok := s.readyProject(c)
	if !ok {
		return nil, "", false
	}
	id := c.Query("session")
	if id == "" {
		id = p.OpenCodeSessionID
	}
	if !validRequestID.MatchString(id) {
		s.fail(c, errUnknownSession)
		return nil, "", false
	}
	return p, id, true
}

// withAgent runs fn with the project's hub and its OpenCode client, once the hub reaches the
// workspace, and answers what went wrong (chatFail, notFound for what OpenCode does not know).
func (s *Server) withAgent(c *gin.Context, p *store.Project, notFound *httperr.Error, fn func(oc *opencode.Client, ph *hub.Project) error) bool {
	ph := s.events.Acquire(p.ID)
	defer ph.Release()
	oc, err := ph.Ready(c.Request.Context())
	if err == nil {
		err = fn(oc, ph)
	}
	if err != nil {
		s.fail(c, s.agentError(c, p, err, notFound))
		return false
	}
	return true
}

// inSession runs op on the session sid, 404 when the project's OpenCode does not hold it. A
// session the hub follows is known to exist without asking OpenCode: a message sent in an open
// conversation goes straight through.
func (s *Server) inSession(c *gin.Context, p *store.Project, sid string, op func(ctx context.Context, oc *opencode.Client) error) bool {
	return s.withAgent(c, p, errUnknownSession, func(oc *opencode.Client, ph *hub.Project) error {
		ctx := c.Request.Context()
		if !ph.Knows(sid) {
			if _, err := oc.Session(ctx, sid); err != nil {
				return err
			}
		}
		return op(ctx, oc)
	})
}

// agentError is what reaching the workspace went wrong with, as the person may see it: a
// workspace that does not answer is 503 and is started; OpenCode not knowing the thing is
// notFound; OpenCode refusing the request is 400.
func (s *Server) agentError(c *gin.Context, p *store.Project, err error, notFound *httperr.Error) error {
	var se *opencode.StatusError
	var e *httperr.Error
	switch {
	case errors.As(err, &e):
		return err
	case opencode.IsNotFound(err):
		return notFound.WithCause(err)
	case errors.As(err, &se) && se.Code >= 400 && se.Code < 500:
		return httperr.New(http.StatusBadRequest, "refused", "The agent refused this request.").WithCause(err)
	case errors.Is(err, hub.ErrUnavailable), errors.Is(err, agent.ErrNotStarted), !errors.As(err, &se) && c.Request.Context().Err() == nil:
		s.projects.EnsureRunning(c.Request.Context(), p)
		return errWorkspaceDown.WithCause(err)
	}
	return err
}

func (s *Server) apiMessages(c *gin.Context) {
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	var conv *hub.Conversation
	if s.withAgent(c, p, errUnknownSession, func(_ *opencode.Client, ph *hub.Project) (err error) {
		conv, err = ph.Conversation(c.Request.Context(), sid)
		return err
	}) {
		c.JSON(http.StatusOK, conv)
	}
}

// SendInput is a message to the agent.
type SendInput struct {
	Text    string `json:"text"`
	ModelID string `json:"modelId"`
}

func (s *Server) apiSend(c *gin.Context) {
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	var in SendInput
	if !bindJSONAs(c, s, &in) {
		return
	}
	in.Text = strings.TrimSpace(in.Text)
	switch {
	case in.Text == "":
		s.fail(c, httperr.Invalid("text", "Write a message first."))
		return
	case !utf8.ValidString(in.Text) || utf8.RuneCountInString(in.Text) > projects.MaxPromptLen:
		s.fail(c, httperr.Invalid("text", "Keep a message under 20,000 characters of UTF-8 text."))
		return
	}
	model, err := s.modelFor(c, p, in.ModelID)
	if err != nil {
		s.fail(c, err)
		return
	}
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) error {
		return oc.PromptAsync(ctx, sid, model, in.Text)
	}) {
		c.JSON(http.StatusAccepted, gin.H{"sessionId": sid})
	}
}

// modelFor is the model a message runs on: modelID when the project's provider offers it, the
// project's own model when modelID is empty.
func (s *Server) modelFor(c *gin.Context, p *store.Project, modelID string) (opencode.Model, error) {
	modelID = strings.TrimSpace(modelID)
	if modelID == "" {
		modelID = p.ModelID
	} else {
		models, err := s.modelsOf(c, p)
		if err != nil {
			return opencode.Model{}, err
		}
		if !slices.ContainsFunc(models, func(m ModelView) bool { return m.ID == modelID }) {
			return opencode.Model{}, httperr.Invalid("modelId", "The project's provider does not offer that model: pick one from GET models.")
		}
	}
	m := opencode.Model{ProviderID: p.ProviderID, ModelID: modelID}
	if p.ProviderID == providers.WellKnownID {
		var err error
		if m.ProviderID, m.ModelID, err = providers.SplitModel(modelID); err != nil {
			return opencode.Model{}, httperr.Invalid("modelId", "A well-known provider's model is provider/model.")
		}
	}
	return m, nil
}

func (s *Server) apiAbort(c *gin.Context) {
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) error {
		return oc.Abort(ctx, sid)
	}) {
		c.JSON(http.StatusAccepted, gin.H{"sessionId": sid})
	}
}

// SessionView is a session as the page lists it.
type SessionView struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	ParentID string `json:"parentId,omitempty"`
	Status   string `json:"status"`
	// Revert names the user message a pending undo goes back to.
	Revert    *hub.RevertView          `json:"revert,omitempty"`
	Summary   *opencode.SessionSummary `json:"summary,omitempty"`
	CreatedAt time.Time                `json:"createdAt"`
	UpdatedAt time.Time                `json:"updatedAt"`
}

func sessionView(ss opencode.Session, status string) SessionView {
	v := SessionView{ID: ss.ID, Title: ss.Title, ParentID: ss.ParentID, Status: status, Summary: ss.Summary,
		CreatedAt: time.UnixMilli(ss.Time.Created).UTC(), UpdatedAt: time.UnixMilli(ss.Time.Updated).UTC()}
	if ss.Revert != nil && ss.Revert.MessageID != "" {
		v.Revert = &hub.RevertView{MessageID: ss.Revert.MessageID}
	}
	return v
}

func (s *Server) apiSessions(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	var views []SessionView
	if s.withAgent(c, p, httperr.NotFound("project"), func(oc *opencode.Client, ph *hub.Project) error {
		list, err := oc.Sessions(c.Request.Context())
		views = make([]SessionView, 0, len(list))
		for _, ss := range list {
			views = append(views, sessionView(ss, ph.StatusOf(ss.ID).Type))
		}
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"current": p.OpenCodeSessionID, "sessions": views})
	}
}

// bindTitle reads the optional {"title"} of a new session or terminal: trimmed, at most 100
// characters, def when empty. On false the answer is written.
func (s *Server) bindTitle(c *gin.Context, def string) (string, bool) {
	var in struct {
		Title string `json:"title"`
	}
	if c.Request.ContentLength != 0 && !bindJSONAs(c, s, &in) {
		return "", false
	}
	in.Title = strings.TrimSpace(in.Title)
	if utf8.RuneCountInString(in.Title) > 100 || !utf8.ValidString(in.Title) {
		s.fail(c, httperr.Invalid("title", "Use a title of at most 100 characters."))
		return "", false
	}
	if in.Title == "" {
		return def, true
	}
	return in.Title, true
}

func (s *Server) apiNewSession(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	title, ok := s.bindTitle(c, p.Name+" · "+time.Now().UTC().Format("2006-01-02 15:04"))
	if !ok {
		return
	}
	var ss opencode.Session
	if s.withAgent(c, p, httperr.NotFound("project"), func(oc *opencode.Client, _ *hub.Project) (err error) {
		ss, err = oc.CreateSession(c.Request.Context(), title)
		return err
	}) {
		c.JSON(http.StatusCreated, gin.H{"session": sessionView(ss, "idle")})
	}
}

func (s *Server) apiPermission(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	var in struct {
		Reply string `json:"reply"`
	}
	if !bindJSONAs(c, s, &in) {
		return
	}
	if in.Reply != opencode.ReplyOnce && in.Reply != opencode.ReplyAlways && in.Reply != opencode.ReplyReject {
		s.fail(c, httperr.Invalid("reply", `Reply "once", "always" or "reject".`))
		return
	}
	s.answer(c, p, "permission", func(oc *opencode.Client, id string) error {
		return oc.ReplyPermission(c.Request.Context(), id, in.Reply)
	})
}

func (s *Server) apiQuestion(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	var in struct {
		Answers [][]string `json:"answers"`
		Reject  bool       `json:"reject"`
	}
	if !bindJSONAs(c, s, &in) {
		return
	}
	if in.Reject == (in.Answers != nil) {
		s.fail(c, httperr.Invalid("answers", `Send {"answers": [[label, ...], ...]} with one list per question, or {"reject": true}.`))
		return
	}
	for _, a := range in.Answers {
		if len(a) == 0 {
			s.fail(c, httperr.Invalid("answers", "Answer every question with at least one label."))
			return
		}
	}
	s.answer(c, p, "question", func(oc *opencode.Client, id string) error {
		if in.Reject {
			return oc.RejectQuestion(c.Request.Context(), id)
		}
		return oc.ReplyQuestion(c.Request.Context(), id, in.Answers)
	})
}

// answer replies to a pending permission or question: unknown is 404, answered before 409.
func (s *Server) answer(c *gin.Context, p *store.Project, kind string, reply func(*opencode.Client, string) error) {
	id := c.Param("requestId")
	notPending := httperr.NotFound(kind + " request")
	if !validRequestID.MatchString(id) {
		s.fail(c, notPending)
		return
	}
	if s.withAgent(c, p, notPending, func(oc *opencode.Client, ph *hub.Project) error {
		if _, ok, answered := ph.Pending(kind, id); !ok && answered {
			return httperr.New(http.StatusConflict, "answered", "That "+kind+" request was answered already.")
		} else if !ok {
			return notPending
		}
		return reply(oc, id)
	}) {
		c.JSON(http.StatusAccepted, gin.H{"requestId": id})
	}
}

// ModelView is a model the project's provider offers.
type ModelView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Context int64  `json:"context,omitempty"`
	Output  int64  `json:"output,omitempty"`
}

func (s *Server) apiModels(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	models, err := s.modelsOf(c, p)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"providerId": p.ProviderID, "current": p.ModelID, "models": models})
}

// stream sends the project's conversation events (docs/conversation.md). One upstream serves
// every tab; a reconnect with Last-Event-ID (or ?after=) resumes after that event, or gets
// reset when it cannot.
func (s *Server) stream(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	ph := s.events.Acquire(p.ID)
	defer ph.Release()
	last := c.GetHeader("Last-Event-ID")
	if last == "" {
		last = c.Query("after")
	}
	seq, resumed := ph.ResumeFrom(last)
	wake, stop := ph.Watch()
	defer stop()
	bg := context.WithoutCancel(c.Request.Context())
	go func() {
		// A workspace that does not answer is started; the stream says when it connects.
		if _, err := ph.Ready(bg); errors.Is(err, hub.ErrUnavailable) {
			s.projects.EnsureRunning(bg, p)
		}
	}()

	w := c.Writer
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !resumed {
		_ = writeEvent(w, ph.EventID(seq), "reset", []byte(`{"reason":"the stream cannot resume from that event: re-read the messages"}`))
	}
	w.Flush()
	ctx := c.Request.Context()
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	end := time.NewTimer(streamLifetime)
	defer end.Stop()
	for {
		evs, cur, lost := ph.Since(seq)
		if lost {
			if writeEvent(w, ph.EventID(cur), "reset", []byte(`{"reason":"this tab fell too far behind: re-read the messages"}`)) != nil {
				return
			}
			seq = cur
		}
		for _, ev := range evs {
			if writeEvent(w, ph.EventID(ev.Seq), ev.Type, ev.Data) != nil {
				return
			}
			seq = ev.Seq
		}
		if len(evs) > 0 || lost {
			w.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-ping.C:
			if _, err := w.WriteString(": ping\n\n"); err != nil {
				return
			}
			w.Flush()
		case <-wake:
		}
	}
}

// bindJSONAs is bindJSON answering JSON on every path.
func bindJSONAs(c *gin.Context, s *Server, v any) bool {
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBody)
	if err := c.ShouldBindJSON(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(c, httperr.New(http.StatusRequestEntityTooLarge, "too_large", "The request body is over 256 KiB."))
		} else {
			s.fail(c, httperr.Invalid("", "The body is not valid JSON for this request: send a JSON object with the documented fields."))
		}
		return false
	}
	return true
}
