package opencode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEventsReadsOpenCodesStream(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // longer than the read buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, _ := r.BasicAuth(); u != "opencode" || p != "pw" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"evt_1\",\"type\":\"server.connected\",\"properties\":{}}\n\n")
		fmt.Fprint(w, ": a comment\n\ndata: not json\n\n")
		fmt.Fprintf(w, "data: {\"id\":\"evt_2\",\"type\":\"message.part.delta\",\"properties\":{\"delta\":%q}}\r\n\r\n", big)
	}))
	defer srv.Close()
	c := New(srv.URL, "pw", srv.Client())
	s, err := c.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev, err := s.Next()
	if err != nil || ev.Type != "server.connected" || ev.ID != "evt_1" {
		t.Fatalf("first = %+v, %v", ev, err)
	}
	ev, err = s.Next()
	if err != nil || ev.Type != "message.part.delta" || !strings.Contains(string(ev.Properties), big) {
		t.Fatalf("second = %s, %v", ev.Type, err)
	}
	if _, err := s.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end = %v, want EOF", err)
	}
	if _, err := New(srv.URL, "wrong", srv.Client()).Events(context.Background()); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestDecodeFollowsOnlyKnownTypesAndNamesTheSession(t *testing.T) {
	part, ok := Event{Type: "message.part.updated", Properties: []byte(`{"part":{"id":"prt_1","sessionID":"ses_a","messageID":"msg_1","type":"text","text":"hi"}}`)}.Decode()
	if p, isPart := part.(PartUpdated); !ok || !isPart || p.SessionID != "ses_a" || p.Part.Text != "hi" {
		t.Errorf("a part without sessionID beside it: %#v, %v", part, ok)
	}
	sess, ok := Event{Type: "session.updated", Properties: []byte(`{"info":{"id":"ses_b","title":"t","time":{"created":1,"updated":2}}}`)}.Decode()
	if s, isSess := sess.(SessionChanged); !ok || !isSess || s.SessionID != "ses_b" {
		t.Errorf("a session event names its session by its info: %#v, %v", sess, ok)
	}
	if perm, ok := (Event{Type: "permission.asked", Properties: []byte(`{"id":"per_1","sessionID":"ses_a","permission":"bash"}`)}).Decode(); !ok {
		t.Error("permission.asked did not decode")
	} else if _, isPerm := perm.(Permission); !isPerm {
		t.Errorf("permission.asked decoded as %T", perm)
	}
	for _, ev := range []Event{
		{Type: "config.updated", Properties: []byte(`{"key":"sk-SECRET"}`)},
		{Type: "message.updated", Properties: []byte(`not json`)},
	} {
		if v, ok := ev.Decode(); ok {
			t.Errorf("%s decoded to %#v", ev.Type, v)
		}
	}
}
