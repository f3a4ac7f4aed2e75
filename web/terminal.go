package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/hub"
	"github.com/doce-dev/doce/opencode"
)

// Terminals in the workspace (docs/conversation.md, "Terminals"): OpenCode's /pty, created,
// listed, resized and deleted through doce, and a WebSocket that doce relays server-side to
// OpenCode's with the workspace's password, which never reaches the browser.

const (
	// maxTerminalFrame bounds one WebSocket message either way: OpenCode replays a terminal's
	// past output in 64 KiB frames, and a paste arrives as one.
	maxTerminalFrame = 1 << 20
	maxRows, maxCols = 500, 1000
)

// terminalEnv is added to each terminal's environment, which is otherwise OpenCode's own: it
// blanks what the terminal's user has no need of. The password only guards the workspace's
// port from outside it; the terminal runs inside.
var terminalEnv = map[string]string{"OPENCODE_SERVER_PASSWORD": "", "OPENCODE_SERVER_USERNAME": ""}

var errUnknownTerminal = &httperr.Error{Status: http.StatusNotFound, Code: "not_found", Field: "terminal", Message: "No such terminal in this workspace."}

func (s *Server) terminalRoutes(g *gin.RouterGroup) {
	g.GET("/terminals", s.apiTerminals)
	g.POST("/terminals", s.apiNewTerminal)
	g.PUT("/terminals/:tid", s.apiResizeTerminal)
	g.DELETE("/terminals/:tid", s.apiDeleteTerminal)
	g.GET("/terminals/:tid/connect", s.apiConnectTerminal)
}

// TerminalView is a terminal as doce lists it.
type TerminalView struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Status   string `json:"status"` // running | exited
	ExitCode *int   `json:"exitCode,omitempty"`
}

func terminalView(p opencode.PTY) TerminalView {
	return TerminalView{ID: p.ID, Title: p.Title, Status: p.Status, ExitCode: p.ExitCode}
}

func (s *Server) apiTerminals(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	var views []TerminalView
	if s.withAgent(c, p, httperr.NotFound("project"), func(oc *opencode.Client, _ *hub.Project) error {
		list, err := oc.PTYs(c.Request.Context())
		views = make([]TerminalView, 0, len(list))
		for _, t := range list {
			views = append(views, terminalView(t))
		}
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"terminals": views})
	}
}

func (s *Server) apiNewTerminal(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	title, ok := s.bindTitle(c, "Terminal")
	if !ok {
		return
	}
	var t opencode.PTY
	if s.withAgent(c, p, httperr.NotFound("project"), func(oc *opencode.Client, _ *hub.Project) (err error) {
		t, err = oc.CreatePTY(c.Request.Context(), title, terminalEnv)
		return err
	}) {
		c.JSON(http.StatusCreated, gin.H{"id": t.ID, "terminal": terminalView(t)})
	}
}

// terminalID is the terminal named in the path, 404 when it cannot be one.
func (s *Server) terminalID(c *gin.Context) (string, bool) {
	tid := c.Param("tid")
	if !validRequestID.MatchString(tid) {
		s.fail(c, errUnknownTerminal)
		return "", false
	}
	return tid, true
}

func (s *Server) apiResizeTerminal(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	tid, ok := s.terminalID(c)
	if !ok {
		return
	}
	var in opencode.PTYSize
	if !bindJSONAs(c, s, &in) {
		return
	}
	if in.Rows < 1 || in.Rows > maxRows || in.Cols < 1 || in.Cols > maxCols {
		s.fail(c, httperr.Invalid("rows", "Send {\"rows\", \"cols\"}: 1 to 500 rows and 1 to 1000 columns."))
		return
	}
	var t opencode.PTY
	if s.withAgent(c, p, errUnknownTerminal, func(oc *opencode.Client, _ *hub.Project) (err error) {
		t, err = oc.ResizePTY(c.Request.Context(), tid, in)
		return err
	}) {
		c.JSON(http.StatusOK, gin.H{"terminal": terminalView(t)})
	}
}

func (s *Server) apiDeleteTerminal(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	tid, ok := s.terminalID(c)
	if !ok {
		return
	}
	if s.withAgent(c, p, errUnknownTerminal, func(oc *opencode.Client, _ *hub.Project) error {
		return oc.DeletePTY(c.Request.Context(), tid)
	}) {
		c.Status(http.StatusNoContent)
	}
}

// apiConnectTerminal relays a terminal's WebSocket: the browser (session cookie, or a token
// outside a browser) to doce, doce to OpenCode with the workspace's password. Frames pass
// unchanged both ways, so OpenCode's protocol holds end to end: its replay of past output
// from ?cursor=, the binary cursor frame, live output, and input as text.
func (s *Server) apiConnectTerminal(c *gin.Context) {
	// A browser sends Origin with every WebSocket, and cookies whatever page opened it: only
	// doce's own pages may (cross-site WebSocket hijacking). Without Origin it is no browser.
	if o := c.GetHeader("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, c.Request.Host) {
			s.fail(c, httperr.New(http.StatusForbidden, "origin", "Terminals open only from doce's own pages."))
			return
		}
	}
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	tid, ok := s.terminalID(c)
	if !ok {
		return
	}
	cursor := int64(0)
	if v := c.Query("cursor"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < -1 {
			s.fail(c, httperr.Invalid("cursor", "cursor is the count the terminal's last cursor frame gave, or -1 to skip past output."))
			return
		}
		cursor = n
	}
	var up *websocket.Conn
	if !s.withAgent(c, p, errUnknownTerminal, func(oc *opencode.Client, _ *hub.Project) error {
		ctx := c.Request.Context()
		if _, err := oc.PTY(ctx, tid); err != nil {
			return err // unknown: 404 before upgrading, rather than OpenCode's close 4404 after
		}
		u, hdr, hc := oc.PTYConnect(tid, cursor)
		conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc, HTTPHeader: hdr}) //nolint:bodyclose // the handshake's body is the connection, or closed by Dial when it fails
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusNotFound {
				return errUnknownTerminal
			}
			return err
		}
		up = conn
		return nil
	}) {
		return
	}
	up.SetReadLimit(maxTerminalFrame)
	down, err := websocket.Accept(c.Writer, c.Request, nil)
	if err != nil { // Accept has answered
		up.Close(websocket.StatusGoingAway, "")
		return
	}
	down.SetReadLimit(maxTerminalFrame)

	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	done := make(chan error, 2)
	go func() { done <- pipeFrames(ctx, down, up) }()
	go func() { done <- pipeFrames(ctx, up, down) }()
	code, reason := closeOf(<-done)
	down.Close(code, reason)
	up.Close(code, reason)
	cancel()
	<-done //nolint:errcheck // the other direction's end; the first one chose how to close
}

// pipeFrames copies messages from src to dst, type and bytes unchanged, until either fails.
func pipeFrames(ctx context.Context, dst, src *websocket.Conn) error {
	for {
		typ, b, err := src.Read(ctx)
		if err != nil {
			return err
		}
		if err := dst.Write(ctx, typ, b); err != nil {
			return err
		}
	}
}

// closeOf is the close to pass on for the end of one side: its own close code (a shell that
// exited is 1000, an unknown terminal 4404), else "going away".
func closeOf(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code != websocket.StatusNoStatusRcvd && ce.Code != websocket.StatusAbnormalClosure {
		return ce.Code, ce.Reason
	}
	return websocket.StatusGoingAway, ""
}
