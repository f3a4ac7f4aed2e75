package opencode

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// The types below are an allow-list as much as a schema: decoding OpenCode's answers into them
// drops every field doce did not choose to keep, so what they encode again is safe to hand to
// the owner's browser. They follow OpenCode 1.18.33's OpenAPI document (GET /doc).

// Session is an OpenCode session.
type Session struct {
	ID       string      `json:"id"`
	Title    string      `json:"title"`
	ParentID string      `json:"parentID,omitempty"`
	Time     SessionTime `json:"time"`
	// Revert is the pending undo, if any (see Client.Revert).
	Revert  *SessionRevert  `json:"revert,omitempty"`
	Summary *SessionSummary `json:"summary,omitempty"`
}

// SessionTime is when a session was made and last changed, in unix milliseconds.
type SessionTime struct {
	Created int64 `json:"created"`
	Updated int64 `json:"updated"`
}

// Message is a session message with its parts, as GET /session/{id}/message lists them.
type Message struct {
	Info  MessageInfo `json:"info"`
	Parts []Part      `json:"parts"`
}

// MessageInfo is a message without its parts: a user's or an assistant's.
type MessageInfo struct {
	ID         string        `json:"id"`
	SessionID  string        `json:"sessionID"`
	Role       string        `json:"role"` // user | assistant
	ParentID   string        `json:"parentID,omitempty"`
	Time       MessageTime   `json:"time"`
	ProviderID string        `json:"providerID,omitempty"` // assistant
	ModelID    string        `json:"modelID,omitempty"`    // assistant
	Model      *Model        `json:"model,omitempty"`      // user: what the prompt asked for
	Agent      string        `json:"agent,omitempty"`
	Error      *MessageError `json:"error,omitempty"`
	Cost       float64       `json:"cost,omitempty"`
	Tokens     *Tokens       `json:"tokens,omitempty"`
	// Summary is, on a user message, its turn's title and changed files; on an assistant
	// message, whether it is a compaction's summary.
	Summary *MessageSummary `json:"summary,omitempty"`
}

// MessageTime is when a message was made and finished, in unix milliseconds.
type MessageTime struct {
	Created   float64 `json:"created"`
	Completed float64 `json:"completed,omitempty"`
}

// MessageError is why an assistant message or a session stopped. OpenCode nests the message
// under data; doce keeps the name and that message only.
type MessageError struct {
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

// UnmarshalJSON reads OpenCode's {"name","data":{"message",...}}, and doce's own flat shape.
func (e *MessageError) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name    string `json:"name"`
		Message string `json:"message"`
		Data    struct {
			Message string `json:"message"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	e.Name, e.Message = raw.Name, raw.Message
	if e.Message == "" {
		e.Message = raw.Data.Message
	}
	return nil
}

// Tokens counts what a message or step used.
type Tokens struct {
	Input     float64 `json:"input"`
	Output    float64 `json:"output"`
	Reasoning float64 `json:"reasoning"`
}

// Part is one piece of a message: text, reasoning, a tool call, a step's start or finish, a
// file or a patch. Type says which fields are set.
type Part struct {
	ID        string `json:"id"`
	SessionID string `json:"sessionID"`
	MessageID string `json:"messageID"`
	Type      string `json:"type"`
	// text, reasoning
	Text      string    `json:"text,omitempty"`
	Synthetic bool      `json:"synthetic,omitempty"`
	Time      *PartTime `json:"time,omitempty"`
	// tool
	CallID string     `json:"callID,omitempty"`
	Tool   string     `json:"tool,omitempty"`
	State  *ToolState `json:"state,omitempty"`
	// step-finish
	Reason string  `json:"reason,omitempty"`
	Cost   float64 `json:"cost,omitempty"`
	Tokens *Tokens `json:"tokens,omitempty"`
	// file
	Mime     string `json:"mime,omitempty"`
	Filename string `json:"filename,omitempty"`
	URL      string `json:"url,omitempty"`
	// patch
	Hash  string   `json:"hash,omitempty"`
	Files []string `json:"files,omitempty"`
}

// PartTime is when a part (or a tool run) started and ended, in unix milliseconds.
type PartTime struct {
	Start int64 `json:"start"`
	End   int64 `json:"end,omitempty"`
}

// ToolState is a tool call's progress: pending, running, completed or error.
type ToolState struct {
	Status string          `json:"status"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output string          `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Title  string          `json:"title,omitempty"`
	Time   *PartTime       `json:"time,omitempty"`
}

// SessionStatus is whether a session is idle, busy, or waiting to retry its provider.
type SessionStatus struct {
	Type    string `json:"type"` // idle | busy | retry
	Attempt int    `json:"attempt,omitempty"`
	Message string `json:"message,omitempty"`
	Next    int64  `json:"next,omitempty"`
}

// Permission is a request of the agent to do something its configuration makes it ask for.
type Permission struct {
	ID         string          `json:"id"`
	SessionID  string          `json:"sessionID"`
	Permission string          `json:"permission"`
	Patterns   []string        `json:"patterns"`
	Always     []string        `json:"always"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
	Tool       *ToolRef        `json:"tool,omitempty"`
}

// ToolRef names the tool call a permission or question belongs to.
type ToolRef struct {
	MessageID string `json:"messageID"`
	CallID    string `json:"callID"`
}

// Question is the agent asking its user to choose.
type Question struct {
	ID        string         `json:"id"`
	SessionID string         `json:"sessionID"`
	Questions []QuestionInfo `json:"questions"`
	Tool      *ToolRef       `json:"tool,omitempty"`
}

// QuestionInfo is one question with its options.
type QuestionInfo struct {
	Question string           `json:"question"`
	Header   string           `json:"header"`
	Options  []QuestionOption `json:"options"`
	Multiple bool             `json:"multiple,omitempty"`
	Custom   bool             `json:"custom,omitempty"`
}

// QuestionOption is one choice.
type QuestionOption struct {
	Label       string `json:"label"`
	Description string `json:"description"`
}

// Todo is one item of the agent's task list.
type Todo struct {
	Content  string `json:"content"`
	Status   string `json:"status"`
	Priority string `json:"priority"`
}

// Permission replies OpenCode takes.
const (
	ReplyOnce   = "once"
	ReplyAlways = "always"
	ReplyReject = "reject"
)

// ErrNotFound is OpenCode answering 404: no such session, permission or question.
var ErrNotFound = errors.New("opencode: not found")

// IsNotFound reports whether err is OpenCode answering 404.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.Is(err, ErrNotFound) || errors.As(err, &se) && se.Code == http.StatusNotFound
}

func sessionPath(id string) string { return "/session/" + url.PathEscape(id) }

// CreateSession opens a session titled title.
func (c *Client) CreateSession(ctx context.Context, title string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodPost, "/session", map[string]any{"title": title}, &s)
	if err == nil && s.ID == "" {
		err = errors.New("opencode: POST /session returned no id")
	}
	return s, err
}

// Sessions lists the server's sessions, most recently updated first.
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var ss []Session
	err := c.do(ctx, http.MethodGet, "/session", nil, &ss)
	return ss, err
}

// Session reads one session; IsNotFound(err) when the server has none of that id.
func (c *Client) Session(ctx context.Context, id string) (Session, error) {
	var s Session
	err := c.do(ctx, http.MethodGet, sessionPath(id), nil, &s)
	return s, err
}

// Messages lists a session's messages with their parts, oldest first.
func (c *Client) Messages(ctx context.Context, sessionID string) ([]Message, error) {
	var ms []Message
	err := c.do(ctx, http.MethodGet, sessionPath(sessionID)+"/message", nil, &ms)
	return ms, err
}

// Abort stops the session's current work.
func (c *Client) Abort(ctx context.Context, sessionID string) error {
	return c.do(ctx, http.MethodPost, sessionPath(sessionID)+"/abort", nil, nil)
}

// SessionStatuses is GET /session/status: the sessions that are not idle, by id.
func (c *Client) SessionStatuses(ctx context.Context) (map[string]SessionStatus, error) {
	st := map[string]SessionStatus{}
	err := c.do(ctx, http.MethodGet, "/session/status", nil, &st)
	return st, err
}

// Permissions lists the pending permission requests of every session.
func (c *Client) Permissions(ctx context.Context) ([]Permission, error) {
	var ps []Permission
	err := c.do(ctx, http.MethodGet, "/permission", nil, &ps)
	return ps, err
}

// ReplyPermission answers a pending permission request with once, always or reject.
func (c *Client) ReplyPermission(ctx context.Context, requestID, reply string) error {
	return c.do(ctx, http.MethodPost, "/permission/"+url.PathEscape(requestID)+"/reply", map[string]string{"reply": reply}, nil)
}

// Questions lists the pending questions of every session.
func (c *Client) Questions(ctx context.Context) ([]Question, error) {
	var qs []Question
	err := c.do(ctx, http.MethodGet, "/question", nil, &qs)
	return qs, err
}

// ReplyQuestion answers a pending question: one list of chosen labels per question, in order.
func (c *Client) ReplyQuestion(ctx context.Context, requestID string, answers [][]string) error {
	return c.do(ctx, http.MethodPost, "/question/"+url.PathEscape(requestID)+"/reply", map[string]any{"answers": answers}, nil)
}

// RejectQuestion declines to answer a pending question.
func (c *Client) RejectQuestion(ctx context.Context, requestID string) error {
	return c.do(ctx, http.MethodPost, "/question/"+url.PathEscape(requestID)+"/reject", nil, nil)
}

// CatalogModel is a model of OpenCode's catalog, without its options.
type CatalogModel struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Limit struct {
		Context float64 `json:"context"`
		Output  float64 `json:"output"`
	} `json:"limit"`
	// Cost is in dollars per million tokens.
	Cost struct {
		Input      float64 `json:"input"`
		Output     float64 `json:"output"`
		CacheRead  float64 `json:"cache_read"`
		CacheWrite float64 `json:"cache_write"`
	} `json:"cost"`
}

// CatalogProvider is a provider of OpenCode's catalog with its models.
type CatalogProvider struct {
	ID     string                  `json:"id"`
	Name   string                  `json:"name"`
	Models map[string]CatalogModel `json:"models"`
}

// Catalog is GET /provider decoded into ids, names and limits only. OpenCode's answer also
// carries every stored key in plain text (measured on 1.18.33); decoding into these types
// drops them, and the caller keeps even this server-side.
func (c *Client) Catalog(ctx context.Context) ([]CatalogProvider, error) {
	var out struct {
		All []CatalogProvider `json:"all"`
	}
	err := c.do(ctx, http.MethodGet, "/provider", nil, &out)
	return out.All, err
}
