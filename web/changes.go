package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/hub"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// The workbench routes (docs/conversation.md, "The workbench"): what the agent changed, undo
// and redo, and managing sessions. Like the conversation they are the owner's only, served
// under /api/v1/projects/{id}/ and /projects/{id}/.

const (
	// maxPatchBytes cuts one file's patch in an answer: past it a diff is no longer read in a
	// browser, and the file can be downloaded whole.
	maxPatchBytes = 512 << 10
	// maxChangesBytes bounds a whole answer's patches; the files after it come without one.
	maxChangesBytes = 8 << 20
	// idleWait bounds how long undo waits for an aborted turn to wind down.
	idleWait = 15 * time.Second
	// compactTimeout bounds a compaction, which runs a whole model call.
	compactTimeout = 10 * time.Minute
)

var (
	errUnknownMessage = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Field: "messageId", Message: "No such message in this session."}
	errStillBusy      = httperr.New(http.StatusConflict, "busy",
		"The agent did not stop in time; wait until it is idle and try again.")
)

func (s *Server) workbenchRoutes(g *gin.RouterGroup) {
	g.GET("/changes", s.apiChanges)
	g.GET("/messages/:messageId/changes", s.apiTurnChanges)
	g.POST("/revert", s.apiRevert)
	g.POST("/unrevert", s.apiUnrevert)
	g.GET("/todos", s.apiTodos)
	g.PATCH("/sessions/:sid", s.apiRenameSession)
	g.DELETE("/sessions/:sid", s.apiDeleteSession)
	g.POST("/sessions/:sid/fork", s.apiFork)
	g.POST("/sessions/:sid/compact", s.apiCompact)
	s.terminalRoutes(g)
}

// ChangedFile is one file in a review: its path in the workspace, added|deleted|modified, line
// counts and unified diff. Binary files have no patch; Truncated says the patch was cut (or
// left out) because it is too large to show.
type ChangedFile struct {
	Path      string `json:"path"`
	Status    string `json:"status"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Patch     string `json:"patch"`
	Binary    bool   `json:"binary,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// Changes is a review: the files, and what they are compared with.
type Changes struct {
	// Base is "start" (the project's starting commit: everything the work changed, committed
	// or not) or "head" (the last commit: uncommitted work only; see docs/conversation.md).
	Base  string        `json:"base,omitempty"`
	Files []ChangedFile `json:"files"`
}

// reviewOf turns OpenCode's diffs into a review a browser can show: binary files flagged,
// patches cut at maxPatchBytes each and maxChangesBytes in all, with a note in the patch.
func reviewOf(ds []opencode.FileDiff) []ChangedFile {
	out := make([]ChangedFile, 0, len(ds))
	total := 0
	for _, d := range ds {
		f := ChangedFile{Path: d.File, Status: d.Status, Additions: d.Additions, Deletions: d.Deletions, Patch: d.Patch}
		if f.Status == "" {
			f.Status = "modified"
		}
		switch {
		case isBinaryPatch(f.Patch):
			f.Binary, f.Patch = true, ""
		case total+len(f.Patch) > maxChangesBytes:
			f.Truncated, f.Patch = true, ""
		case len(f.Patch) > maxPatchBytes:
			cut := strings.LastIndexByte(f.Patch[:maxPatchBytes], '\n') + 1
			f.Truncated, f.Patch = true, f.Patch[:cut]
		case f.Additions+f.Deletions > 0 && !strings.Contains(f.Patch, "\n@@"):
			// OpenCode leaves the hunks out of a patch past its own 10 MB cap.
			f.Truncated = true
		}
		total += len(f.Patch)
		out = append(out, f)
	}
	return out
}

// isBinaryPatch recognises git's patch of a binary file: a header and "Binary files ... differ"
// (or a base85 "GIT binary patch"), no hunks.
func isBinaryPatch(p string) bool {
	return !strings.Contains(p, "\n@@") && (strings.Contains(p, "\nBinary files ") || strings.Contains(p, "\nGIT binary patch"))
}

func (s *Server) apiChanges(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	// ?base=head: only what is not committed yet (the Git tab: what a push would commit).
	headOnly := false
	switch c.Query("base") {
	case "":
	case "head":
		headOnly = true
	default:
		s.fail(c, httperr.Invalid("base", "base is head (the changes not committed yet), or left out (everything the work changed)."))
		return
	}
	var out Changes
	if s.withAgent(c, p, httperr.NotFound("project"), func(oc *opencode.Client, _ *hub.Project) (err error) {
		out.Base, out.Files, err = workspaceChanges(c.Request.Context(), oc, headOnly)
		return err
	}) {
		c.JSON(http.StatusOK, out)
	}
}

// workspaceChanges is everything the project's work changed. A workspace made by doce starts
// with its first commit on main and works on branch "work" (scripts/workspace-image.sh), so the
// diff against the merge base with main covers the agent's commits too. A workspace on its
// default branch (made before, or switched back by the agent) has no such base: its review is
// the working tree against HEAD, untracked files included, as is the review headOnly asks for.
func workspaceChanges(ctx context.Context, oc *opencode.Client, headOnly bool) (string, []ChangedFile, error) {
	if !headOnly {
		v, err := oc.VCS(ctx)
		if err != nil {
			return "", nil, err
		}
		if v.Branch != "" && v.DefaultBranch != "" && v.Branch != v.DefaultBranch {
			ds, err := oc.VCSDiff(ctx, "branch")
			if err != nil {
				return "", nil, err
			}
			return "start", reviewOf(ds), nil
		}
	}
	ds, err := oc.VCSDiff(ctx, "git")
	if err != nil {
		return "", nil, err
	}
	if headOnly {
		// What a push would commit: doce's own files are never in it.
		ds = slices.DeleteFunc(ds, func(d opencode.FileDiff) bool { return workspace.Uncommitted(d.File) })
	}
	return "head", reviewOf(ds), nil
}

func (s *Server) apiTurnChanges(c *gin.Context) {
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	mid := c.Param("messageId")
	if !validRequestID.MatchString(mid) {
		s.fail(c, errUnknownMessage)
		return
	}
	var files []ChangedFile
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) error {
		ds, err := oc.SessionDiff(ctx, sid, mid)
		files = reviewOf(ds)
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"sessionId": sid, "messageId": mid, "files": files})
	}
}

// sessionFromBody lets a JSON body's "session" pick the session, as ?session= does.
func sessionFromBody(c *gin.Context, body string) {
	if body == "" {
		return
	}
	q := c.Request.URL.Query()
	q.Set("session", body)
	c.Request.URL.RawQuery = q.Encode()
}

func (s *Server) apiRevert(c *gin.Context) {
	var in struct {
		MessageID string `json:"messageId"`
		Session   string `json:"session"`
	}
	if !bindJSONAs(c, s, &in) {
		return
	}
	if in.MessageID == "" {
		s.fail(c, httperr.Invalid("messageId", "Name the user message to undo from (messageId)."))
		return
	}
	sessionFromBody(c, in.Session)
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	if !validRequestID.MatchString(in.MessageID) {
		s.fail(c, errUnknownMessage)
		return
	}
	var ss opencode.Session
	if s.withAgent(c, p, errUnknownMessage, func(oc *opencode.Client, ph *hub.Project) error {
		ctx := c.Request.Context()
		role, err := ph.RoleOf(ctx, sid, in.MessageID)
		if err != nil {
			if opencode.IsNotFound(err) {
				return errUnknownSession
			}
			return err
		}
		if role != "user" {
			return httperr.Invalid("messageId", "Undo goes back to before one of your messages: name a user message of this session.")
		}
		ss, err = whenIdle(ctx, oc, ph, sid, func() (opencode.Session, error) { return oc.Revert(ctx, sid, in.MessageID) })
		if err == nil {
			ph.SetRevert(sid, ss.Revert)
		}
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"session": sessionView(ss, "idle")})
	}
}

func (s *Server) apiUnrevert(c *gin.Context) {
	var in struct {
		Session string `json:"session"`
	}
	if c.Request.ContentLength != 0 && !bindJSONAs(c, s, &in) {
		return
	}
	sessionFromBody(c, in.Session)
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	var ss opencode.Session
	if s.withAgent(c, p, errUnknownSession, func(oc *opencode.Client, ph *hub.Project) (err error) {
		ctx := c.Request.Context()
		ss, err = whenIdle(ctx, oc, ph, sid, func() (opencode.Session, error) { return oc.Unrevert(ctx, sid) })
		if err == nil {
			ph.SetRevert(sid, ss.Revert)
		}
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"session": sessionView(ss, "idle")})
	}
}

// whenIdle runs op, which OpenCode refuses (409) while the session is busy: a busy session is
// aborted first, and op is retried until the turn has wound down, for at most idleWait.
func whenIdle(ctx context.Context, oc *opencode.Client, ph *hub.Project, sid string, op func() (opencode.Session, error)) (opencode.Session, error) {
	if ph.StatusOf(sid).Type != "idle" {
		if err := oc.Abort(ctx, sid); err != nil {
			return opencode.Session{}, err
		}
	}
	deadline := time.Now().Add(idleWait)
	for {
		ss, err := op()
		var se *opencode.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusConflict {
			return ss, err
		}
		if time.Now().After(deadline) {
			return ss, errStillBusy
		}
		if err := oc.Abort(ctx, sid); err != nil {
			return opencode.Session{}, err
		}
		select {
		case <-ctx.Done():
			return ss, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (s *Server) apiTodos(c *gin.Context) {
	p, sid, ok := s.chatSession(c)
	if !ok {
		return
	}
	var todos []opencode.Todo
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) (err error) {
		todos, err = oc.Todos(ctx, sid)
		return err
	}) {
		if todos == nil {
			todos = []opencode.Todo{}
		}
		c.JSON(http.StatusOK, gin.H{"sessionId": sid, "todos": todos})
	}
}

// pathSession is the project and the session named in the path (…/sessions/{sid}/…).
func (s *Server) pathSession(c *gin.Context) (*store.Project, string, bool) {
	p, ok := s.readyProject(c)
	if !ok {
		return nil, "", false
	}
	sid := c.Param("sid")
	if !validRequestID.MatchString(sid) {
		s.fail(c, errUnknownSession)
		return nil, "", false
	}
	return p, sid, true
}

func (s *Server) apiRenameSession(c *gin.Context) {
	p, sid, ok := s.pathSession(c)
	if !ok {
		return
	}
	var in struct {
		Title string `json:"title"`
	}
	if !bindJSONAs(c, s, &in) {
		return
	}
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" || utf8.RuneCountInString(in.Title) > 100 {
		s.fail(c, httperr.Invalid("title", "Use a title of 1 to 100 characters."))
		return
	}
	var ss opencode.Session
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) (err error) {
		ss, err = oc.RenameSession(ctx, sid, in.Title)
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"session": sessionView(ss, "idle")})
	}
}

func (s *Server) apiDeleteSession(c *gin.Context) {
	p, sid, ok := s.pathSession(c)
	if !ok {
		return
	}
	if sid == p.OpenCodeSessionID {
		s.fail(c, httperr.New(http.StatusConflict, "main_session",
			"This is the project's main session, the one its page opens with: it cannot be deleted."))
		return
	}
	if s.withAgent(c, p, errUnknownSession, func(oc *opencode.Client, ph *hub.Project) error {
		if err := oc.DeleteSession(c.Request.Context(), sid); err != nil {
			return err
		}
		ph.Forget(sid) // now, not when the event comes: the next read must not find it
		return nil
	}) {
		c.Status(http.StatusNoContent)
	}
}

func (s *Server) apiFork(c *gin.Context) {
	p, sid, ok := s.pathSession(c)
	if !ok {
		return
	}
	var in struct {
		MessageID string `json:"messageId"`
	}
	if c.Request.ContentLength != 0 && !bindJSONAs(c, s, &in) {
		return
	}
	if in.MessageID != "" && !validRequestID.MatchString(in.MessageID) {
		s.fail(c, errUnknownMessage)
		return
	}
	var ss opencode.Session
	if s.inSession(c, p, sid, func(ctx context.Context, oc *opencode.Client) (err error) {
		ss, err = oc.Fork(ctx, sid, in.MessageID)
		return err
	}) {
		c.JSON(http.StatusCreated, gin.H{"session": sessionView(ss, "idle")})
	}
}

// apiCompact starts a compaction and answers at once: OpenCode's call lasts as long as a model
// call. Progress shows on the stream (session.status busy, then session.compacted and idle).
func (s *Server) apiCompact(c *gin.Context) {
	p, sid, ok := s.pathSession(c)
	if !ok {
		return
	}
	model, err := s.modelFor(c, p, "")
	if err != nil {
		s.fail(c, err)
		return
	}
	if s.inSession(c, p, sid, func(_ context.Context, oc *opencode.Client) error {
		ph := s.events.Acquire(p.ID) // keeps the hub, and the events the page waits for, up meanwhile
		if ph.StatusOf(sid).Type != "idle" {
			ph.Release()
			return httperr.New(http.StatusConflict, "busy", "The agent is working in this session: compact it once it is idle.")
		}
		go func() {
			defer ph.Release()
			ctx, cancel := context.WithTimeout(context.Background(), compactTimeout)
			defer cancel()
			if err := oc.Summarize(ctx, sid, model); err != nil {
				s.Log.Warn("compaction failed", "project_id", p.ID, "session_id", sid, "error", err)
			}
		}()
		return nil
	}) {
		c.JSON(http.StatusAccepted, gin.H{"sessionId": sid})
	}
}
