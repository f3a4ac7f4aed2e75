package opencode

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Review, undo and session management (docs/conversation.md, "The workbench"). The types, like
// those of conversation.go, are allow-lists of OpenCode 1.18.33's answers.

// SessionRevert is a pending undo: the messages from MessageID on are hidden and their file
// changes rolled back until the session is unreverted or prompted again. OpenCode also keeps
// the snapshot hash and the whole diff here; doce keeps neither.
type SessionRevert struct {
	MessageID string `json:"messageID"`
	PartID    string `json:"partID,omitempty"`
}

// SessionSummary counts what a session's work changed.
type SessionSummary struct {
	Additions int `json:"additions"`
	Deletions int `json:"deletions"`
	Files     int `json:"files"`
}

// MessageSummary is what OpenCode records of a user message's turn: its title, and the files
// the turn changed (counts only: the patches, and the files' whole contents OpenCode keeps
// there too, are read on demand with SessionDiff). Compaction marks an assistant message that
// summarises the session's history.
type MessageSummary struct {
	Compaction bool       `json:"compaction,omitempty"`
	Title      string     `json:"title,omitempty"`
	Diffs      []FileStat `json:"diffs,omitempty"`
}

// FileStat is a changed file without its patch.
type FileStat struct {
	File      string `json:"file"`
	Additions int    `json:"additions"`
	Deletions int    `json:"deletions"`
	Status    string `json:"status,omitempty"` // added | deleted | modified
}

// FileDiff is a changed file with its unified diff. OpenCode leaves a patch empty (a header
// without hunks) past its 10 MB cap.
type FileDiff struct {
	FileStat
	Patch string `json:"patch"`
}

// Revert rolls the session's files and conversation back to before messageID (a user message).
// OpenCode answers 409 while the session is busy.
func (c *Client) Revert(ctx context.Context, sessionID, messageID string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, sessionPath(sessionID)+"/revert", map[string]string{"messageID": messageID}, &s)
	return s, err
}

// Unrevert undoes a pending revert: the files as they were before it, the messages shown again.
func (c *Client) Unrevert(ctx context.Context, sessionID string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, sessionPath(sessionID)+"/unrevert", nil, &s)
	return s, err
}

// Fork copies the session's messages before messageID (all of them when empty) into a new
// session; files are left alone.
func (c *Client) Fork(ctx context.Context, sessionID, messageID string) (Session, error) {
	body := map[string]string{}
	if messageID != "" {
		body["messageID"] = messageID
	}
	var s Session
	err := c.do(ctx, http.MethodPost, sessionPath(sessionID)+"/fork", body, &s)
	return s, err
}

// RenameSession sets the session's title.
func (c *Client) RenameSession(ctx context.Context, sessionID, title string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPatch, sessionPath(sessionID), map[string]string{"title": title}, &s)
	return s, err
}

// DeleteSession removes the session and its messages.
func (c *Client) DeleteSession(ctx context.Context, sessionID string) error {
	return c.do(ctx, http.MethodDelete, sessionPath(sessionID), nil, nil)
}

// Summarize compacts the session's history with model. OpenCode answers only once the
// compaction is done, which can take as long as a turn: ctx must allow for it, and the
// client's own timeout does not apply.
func (c *Client) Summarize(ctx context.Context, sessionID string, model Model) error {
	long := *c
	hc := *c.http
	hc.Timeout = 0
	long.http = &hc
	return long.do(ctx, http.MethodPost, sessionPath(sessionID)+"/summarize", model, nil)
}

// Todos is the agent's task list in the session.
func (c *Client) Todos(ctx context.Context, sessionID string) ([]Todo, error) {
	var ts []Todo
	err := c.do(ctx, http.MethodGet, sessionPath(sessionID)+"/todo", nil, &ts)
	return ts, err
}

// SessionDiff is what the turn of user message messageID changed, from OpenCode's snapshots.
func (c *Client) SessionDiff(ctx context.Context, sessionID, messageID string) ([]FileDiff, error) {
	var ds []FileDiff
	err := c.do(ctx, http.MethodGet, sessionPath(sessionID)+"/diff?messageID="+url.QueryEscape(messageID), nil, &ds)
	return ds, err
}

// VCSDiff is the workspace's git diff: mode "git" is the working tree (untracked files
// included) against HEAD, "branch" against the merge base with the default branch.
func (c *Client) VCSDiff(ctx context.Context, mode string) ([]FileDiff, error) {
	var ds []FileDiff
	err := c.do(ctx, http.MethodGet, "/vcs/diff?mode="+url.QueryEscape(mode), nil, &ds)
	return ds, err
}

// VCSStatus lists the files changed in the working tree against HEAD, with counts.
func (c *Client) VCSStatus(ctx context.Context) ([]FileStat, error) {
	var fs []FileStat
	err := c.do(ctx, http.MethodGet, "/vcs/status", nil, &fs)
	return fs, err
}

// VCS is the workspace's branch and the branch OpenCode takes as its default.
type VCS struct {
	Branch        string `json:"branch"`
	DefaultBranch string `json:"default_branch"`
}

// VCS reads the workspace's branches.
func (c *Client) VCS(ctx context.Context) (VCS, error) {
	var v VCS
	err := c.do(ctx, http.MethodGet, "/vcs", nil, &v)
	return v, err
}

// PTY is a terminal of the workspace.
type PTY struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Command  string `json:"command"`
	Cwd      string `json:"cwd"`
	Status   string `json:"status"` // running | exited
	ExitCode *int   `json:"exitCode,omitempty"`
}

// PTYSize is a terminal's size in character cells.
type PTYSize struct {
	Rows int `json:"rows"`
	Cols int `json:"cols"`
}

// CreatePTY starts a login shell in the project's directory. OpenCode gives it its own
// environment plus env, so env must blank whatever of OpenCode's the terminal's user must not
// read.
func (c *Client) CreatePTY(ctx context.Context, title string, env map[string]string) (PTY, error) {
	var p PTY
	err := c.do(ctx, http.MethodPost, "/pty", map[string]any{"title": title, "env": env}, &p)
	return p, err
}

// PTYs lists the workspace's terminals.
func (c *Client) PTYs(ctx context.Context) ([]PTY, error) {
	var ps []PTY
	err := c.do(ctx, http.MethodGet, "/pty", nil, &ps)
	return ps, err
}

func ptyPath(id string) string { return "/pty/" + url.PathEscape(id) }

// PTY reads one terminal; IsNotFound(err) when the workspace has none of that id.
func (c *Client) PTY(ctx context.Context, id string) (PTY, error) {
	var p PTY
	err := c.do(ctx, http.MethodGet, ptyPath(id), nil, &p)
	return p, err
}

// ResizePTY sets a terminal's size.
func (c *Client) ResizePTY(ctx context.Context, id string, size PTYSize) (PTY, error) {
	var p PTY
	err := c.do(ctx, http.MethodPut, ptyPath(id), map[string]any{"size": size}, &p)
	return p, err
}

// DeletePTY ends a terminal and its shell.
func (c *Client) DeletePTY(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, ptyPath(id), nil, nil)
}

// PTYConnect is where and how to open terminal id's WebSocket: the URL (cursor < 0 skips the
// replay of past output) and the headers that authenticate it. The headers hold the server's
// password: they go to OpenCode only.
func (c *Client) PTYConnect(id string, cursor int64) (string, http.Header, *http.Client) {
	u, _ := url.Parse(c.baseURL + ptyPath(id) + "/connect")
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.RawQuery = url.Values{"cursor": {strconv.FormatInt(cursor, 10)}}.Encode()
	req := http.Request{Header: http.Header{}}
	req.SetBasicAuth("opencode", c.password)
	hc := *c.http
	hc.Timeout = 0 // a terminal lasts as long as its connection; ctx bounds it
	return u.String(), req.Header, &hc
}

// UnmarshalJSON reads a user message's summary object, and an assistant message's boolean
// (OpenCode marks a compaction's summary with "summary": true).
func (m *MessageSummary) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true":
		*m = MessageSummary{Compaction: true}
		return nil
	case "false", "null":
		*m = MessageSummary{}
		return nil
	}
	type plain MessageSummary
	return json.Unmarshal(b, (*plain)(m))
}
