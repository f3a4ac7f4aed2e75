package opencode

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// Event is one event of GET /event: every session's messages, parts, statuses, permission
// requests and questions, as OpenCode publishes them on its bus.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Properties json.RawMessage `json:"properties"`
}

// EventStream reads GET /event. It is not safe for concurrent use.
type EventStream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// maxEventSize bounds one event: a tool's whole output travels in one part update.
const maxEventSize = 16 << 20

// Events subscribes to the server's event stream. The stream lasts until ctx ends, the server
// goes away, or Close; the client's overall request timeout does not apply to it.
//
// OpenCode's stream is plain server-sent events with one JSON object per `data:` line and no
// ids or retry hints, so the few lines below read it; a general SSE library would bring its
// own reconnecting, which the hub does itself (it must re-read state after a gap anyway).
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+"/event", nil)
	if err != nil {
		return nil, fmt.Errorf("opencode: unable to build request: %w", err)
	}
	req.SetBasicAuth("opencode", c.password)
	req.Header.Set("Accept", "text/event-stream")
	hc := *c.http
	hc.Timeout = 0 // a stream has no end to wait for; ctx bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("opencode: GET /event: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, &StatusError{Method: http.MethodGet, Path: "/event", Code: resp.StatusCode, Body: string(b)}
	}
	return &EventStream{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// Next returns the next event, blocking until one arrives. Events whose data is not an
// OpenCode event object are skipped.
func (s *EventStream) Next() (Event, error) {
	var data []byte
	for {
		line, err := s.readLine()
		if err != nil {
			return Event{}, err
		}
		switch {
		case len(line) == 0: // end of an event
			if len(data) == 0 {
				continue
			}
			var ev Event
			if err := json.Unmarshal(data, &ev); err != nil || ev.Type == "" {
				data = data[:0]
				continue
			}
			return ev, nil
		case bytes.HasPrefix(line, []byte("data:")):
			v := bytes.TrimPrefix(line[5:], []byte(" "))
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, v...)
			if len(data) > maxEventSize {
				return Event{}, errors.New("opencode: an event is larger than 16 MiB")
			}
		}
		// id:, event:, retry: and comments carry nothing OpenCode relies on.
	}
}

func (s *EventStream) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(line) > maxEventSize {
				return nil, errors.New("opencode: an event is larger than 16 MiB")
			}
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) == 0 {
				return nil, io.EOF
			}
			if err != io.EOF {
				return nil, err
			}
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

// Close ends the subscription.
func (s *EventStream) Close() error { return s.body.Close() }

// The events doce follows, decoded by Decode: each holds the allow-listed fields of its type
// only (the types' own allow-lists: Session, MessageInfo, Part, …), so what passes on to a
// page is what these structs hold.
type (
	// MessageUpdated is message.updated.
	MessageUpdated struct {
		SessionID string      `json:"sessionID"`
		Info      MessageInfo `json:"info"`
	}
	// MessageRemoved is message.removed.
	MessageRemoved struct {
		SessionID string `json:"sessionID"`
		MessageID string `json:"messageID"`
	}
	// PartUpdated is message.part.updated: the part whole.
	PartUpdated struct {
		SessionID string `json:"sessionID"`
		Part      Part   `json:"part"`
	}
	// PartDelta is message.part.delta: text to append to a part's field.
	PartDelta struct {
		SessionID string `json:"sessionID"`
		MessageID string `json:"messageID"`
		PartID    string `json:"partID"`
		Field     string `json:"field"`
		Delta     string `json:"delta"`
	}
	// PartRemoved is message.part.removed.
	PartRemoved struct {
		SessionID string `json:"sessionID"`
		MessageID string `json:"messageID"`
		PartID    string `json:"partID"`
	}
	// SessionChanged is session.created, session.updated or session.deleted.
	SessionChanged struct {
		SessionID string  `json:"sessionID"`
		Info      Session `json:"info"`
	}
	// SessionCompacted is session.compacted.
	SessionCompacted struct {
		SessionID string `json:"sessionID"`
	}
	// SessionStatusChanged is session.status.
	SessionStatusChanged struct {
		SessionID string        `json:"sessionID"`
		Status    SessionStatus `json:"status"`
	}
	// SessionIdle is session.idle.
	SessionIdle struct {
		SessionID string `json:"sessionID"`
	}
	// SessionFailed is session.error.
	SessionFailed struct {
		SessionID string        `json:"sessionID"`
		Error     *MessageError `json:"error,omitempty"`
	}
	// PermissionReplied is permission.replied.
	PermissionReplied struct {
		SessionID string `json:"sessionID"`
		RequestID string `json:"requestID"`
		Reply     string `json:"reply"`
	}
	// QuestionAnswered is question.replied or question.rejected (without answers).
	QuestionAnswered struct {
		SessionID string     `json:"sessionID"`
		RequestID string     `json:"requestID"`
		Answers   [][]string `json:"answers,omitempty"`
	}
	// TodoUpdated is todo.updated.
	TodoUpdated struct {
		SessionID string `json:"sessionID"`
		Todos     []Todo `json:"todos"`
	}
	// FileEdited is file.edited: a path in the workspace the agent wrote.
	FileEdited struct {
		File string `json:"file"`
	}
	// PTYExited is pty.exited.
	PTYExited struct {
		ID       string `json:"id"`
		ExitCode int    `json:"exitCode"`
	}
)

// Decode reads the event's properties into the type above that its type names (permission.asked
// is a Permission, question.asked a Question). ok is false for an event doce does not follow,
// or whose properties do not read.
func (e Event) Decode() (v any, ok bool) {
	switch e.Type {
	case "message.updated":
		return decodeAs[MessageUpdated](e.Properties)
	case "message.removed":
		return decodeAs[MessageRemoved](e.Properties)
	case "message.part.updated":
		p, ok := decodeAs[PartUpdated](e.Properties)
		if p.SessionID == "" {
			p.SessionID = p.Part.SessionID
		}
		return p, ok
	case "message.part.delta":
		return decodeAs[PartDelta](e.Properties)
	case "message.part.removed":
		return decodeAs[PartRemoved](e.Properties)
	case "session.created", "session.updated", "session.deleted":
		s, ok := decodeAs[SessionChanged](e.Properties)
		if s.SessionID == "" {
			s.SessionID = s.Info.ID
		}
		return s, ok
	case "session.compacted":
		return decodeAs[SessionCompacted](e.Properties)
	case "session.status":
		return decodeAs[SessionStatusChanged](e.Properties)
	case "session.idle":
		return decodeAs[SessionIdle](e.Properties)
	case "session.error":
		return decodeAs[SessionFailed](e.Properties)
	case "permission.asked":
		return decodeAs[Permission](e.Properties)
	case "permission.replied":
		return decodeAs[PermissionReplied](e.Properties)
	case "question.asked":
		return decodeAs[Question](e.Properties)
	case "question.replied", "question.rejected":
		return decodeAs[QuestionAnswered](e.Properties)
	case "todo.updated":
		return decodeAs[TodoUpdated](e.Properties)
	case "file.edited":
		return decodeAs[FileEdited](e.Properties)
	case "pty.exited":
		return decodeAs[PTYExited](e.Properties)
	}
	return nil, false
}

func decodeAs[T any](props json.RawMessage) (T, bool) {
	var v T
	return v, json.Unmarshal(props, &v) == nil
}
