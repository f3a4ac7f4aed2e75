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
		if err == bufio.ErrBufferFull {
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
