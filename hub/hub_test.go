package hub

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/doce-dev/doce/opencode"
)

// fakeOpenCode serves the few routes the hub reads, and GET /event from a channel.
type fakeOpenCode struct {
	events      chan string
	subscribers atomic.Int32 // open GET /event requests
	subscribed  atomic.Int32 // GET /event requests ever made
	messages    atomic.Int32 // GET /session/{id}/message requests
	// duringRead, when set, runs while GET /session/{id}/message is being answered.
	duringRead func()
}

func (f *fakeOpenCode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/event":
		f.subscribers.Add(1)
		f.subscribed.Add(1)
		defer f.subscribers.Add(-1)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"evt_0\",\"type\":\"server.connected\",\"properties\":{}}\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-f.events:
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			}
		}
	case r.URL.Path == "/session/status":
		fmt.Fprint(w, `{}`)
	case r.URL.Path == "/permission", r.URL.Path == "/question":
		fmt.Fprint(w, `[]`)
	case strings.HasPrefix(r.URL.Path, "/session/ses_") && strings.Count(r.URL.Path, "/") == 2:
		fmt.Fprintf(w, `{"id":%q,"title":"t","time":{"created":1,"updated":1}}`, strings.TrimPrefix(r.URL.Path, "/session/"))
	case strings.HasSuffix(r.URL.Path, "/message"):
		f.messages.Add(1)
		if f.duringRead != nil {
			f.duringRead()
		}
		fmt.Fprint(w, `[{"info":{"id":"msg_1","sessionID":"ses_a","role":"user","time":{"created":1}},"parts":[{"id":"prt_0","sessionID":"ses_a","messageID":"msg_1","type":"text","text":"hi"}]}]`)
	default:
		http.NotFound(w, r)
	}
}

func newTestHub(t *testing.T, grace time.Duration) (*Hub, *fakeOpenCode) {
	f := &fakeOpenCode{events: make(chan string, 100)}
	srv := httptest.NewServer(f)
	h := New(func(context.Context, string) (*opencode.Client, error) {
		return opencode.New(srv.URL, "pw", srv.Client()), nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), grace)
	t.Cleanup(func() { h.Close(); srv.Close() })
	return h, f
}

func (ph *Project) seqNow() uint64 {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.seq
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHubSharesOneUpstreamAndKeepsTheSnapshotCurrent(t *testing.T) {
	h, f := newTestHub(t, 50*time.Millisecond)
	a, b := h.Acquire("p1"), h.Acquire("p1")
	if a != b {
		t.Fatal("two watchers of one project got two hubs")
	}
	ctx := context.Background()
	conv, err := a.Conversation(ctx, "ses_a")
	if err != nil {
		t.Fatal(err)
	}
	if len(conv.Messages) != 1 || f.messages.Load() != 1 {
		t.Fatalf("cold snapshot: %d messages, %d reads", len(conv.Messages), f.messages.Load())
	}
	start := conv.Cursor

	f.events <- `{"id":"evt_1","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_2","sessionID":"ses_a","role":"assistant","time":{"created":2},"providerID":"custom","path":{"cwd":"/workspace","root":"/"},"system":"SECRET-SYSTEM"}}}`
	f.events <- `{"id":"evt_2","type":"message.part.updated","properties":{"sessionID":"ses_a","part":{"id":"prt_1","sessionID":"ses_a","messageID":"msg_2","type":"text","text":""},"time":1}}`
	f.events <- `{"id":"evt_3","type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_2","partID":"prt_1","field":"text","delta":"Hel"}}`
	f.events <- `{"id":"evt_4","type":"config.updated","properties":{"key":"sk-SECRET"}}`
	f.events <- `{"id":"evt_5","type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_2","partID":"prt_1","field":"text","delta":"lo"}}`

	var seen []Event
	seq, ok := a.ResumeFrom(start)
	if !ok {
		t.Fatalf("cannot resume from the snapshot's own cursor %q", start)
	}
	waitFor(t, "four events", func() bool {
		evs, _, _ := a.Since(seq)
		seen = evs
		return len(evs) >= 4
	})
	var text strings.Builder
	for _, ev := range seen {
		if strings.Contains(string(ev.Data), "SECRET") || ev.Type == "config.updated" {
			t.Errorf("%s passed what is not allow-listed: %s", ev.Type, ev.Data)
		}
		if ev.Type == "message.part.delta" {
			text.WriteString(strings.Split(strings.Split(string(ev.Data), `"delta":"`)[1], `"`)[0])
		}
	}
	if text.String() != "Hello" {
		t.Errorf("deltas after the cursor = %q, want Hello", text.String())
	}
	// Resuming from the middle gives only what follows.
	mid, _ := a.ResumeFrom(a.EventID(seen[1].Seq))
	if evs, _, _ := a.Since(mid); len(evs) != len(seen)-2 {
		t.Errorf("resume from the second event gave %d events, want %d", len(evs), len(seen)-2)
	}
	warm, err := b.Conversation(ctx, "ses_a")
	if err != nil {
		t.Fatal(err)
	}
	if f.messages.Load() != 1 {
		t.Errorf("a warm snapshot read OpenCode again")
	}
	if len(warm.Messages) != 2 || warm.Messages[1].Parts[0].Text != "Hello" {
		t.Errorf("warm snapshot = %+v", warm.Messages)
	}
	if f.subscribed.Load() != 1 {
		t.Errorf("%d upstream subscriptions for one project, want 1", f.subscribed.Load())
	}
	if _, ok := a.ResumeFrom("otherepoch.3"); ok {
		t.Error("an id of another epoch resumed instead of resetting")
	}
	if _, ok := a.ResumeFrom(a.EventID(a.seq + 5)); ok {
		t.Error("an id from the future resumed")
	}

	a.Release()
	b.Release()
	waitFor(t, "the upstream to close after the grace period", func() bool { return f.subscribers.Load() == 0 })
	if c := h.Acquire("p1"); c == a {
		t.Error("a closed hub was reused")
	} else {
		c.Release()
	}
}

// TestHubKeepsWhatArrivesDuringTheRead: a message made while the snapshot is read from OpenCode
// (the read answers without it) is in the snapshot, and a delta to a part the read already
// holds is not applied twice.
func TestHubKeepsWhatArrivesDuringTheRead(t *testing.T) {
	h, f := newTestHub(t, time.Minute)
	ph := h.Acquire("p1")
	defer ph.Release()
	if _, err := ph.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.duringRead = func() {
		base := ph.seqNow()
		f.events <- `{"id":"evt_1","type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_1","partID":"prt_0","field":"text","delta":"hi"}}`
		f.events <- `{"id":"evt_2","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_2","sessionID":"ses_a","role":"user","time":{"created":2}}}}`
		f.events <- `{"id":"evt_3","type":"message.part.updated","properties":{"sessionID":"ses_a","part":{"id":"prt_1","sessionID":"ses_a","messageID":"msg_2","type":"text","text":"sec"}}}`
		f.events <- `{"id":"evt_4","type":"message.part.delta","properties":{"sessionID":"ses_a","messageID":"msg_2","partID":"prt_1","field":"text","delta":"ond"}}`
		waitFor(t, "the hub to take the events", func() bool { return ph.seqNow() >= base+4 })
	}
	conv, err := ph.Conversation(context.Background(), "ses_a")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range conv.Messages {
		for _, p := range m.Parts {
			got = append(got, m.Info.Role+":"+p.Text)
		}
	}
	if want := []string{"user:hi", "user:second"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("snapshot = %q, want %q", got, want)
	}
	if len(ph.loads) != 0 {
		t.Errorf("%d reads still gathering events after the snapshot was made", len(ph.snaps))
	}
}

func TestHubTracksPendingRequests(t *testing.T) {
	h, f := newTestHub(t, time.Minute)
	ph := h.Acquire("p1")
	defer ph.Release()
	if _, err := ph.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.events <- `{"id":"evt_1","type":"permission.asked","properties":{"id":"per_1","sessionID":"ses_a","permission":"bash","patterns":["ls"],"metadata":{},"always":["ls *"]}}`
	waitFor(t, "the permission", func() bool { _, ok, _ := ph.Pending("permission", "per_1"); return ok })
	f.events <- `{"id":"evt_2","type":"permission.replied","properties":{"sessionID":"ses_a","requestID":"per_1","reply":"once"}}`
	waitFor(t, "the reply", func() bool { _, ok, answered := ph.Pending("permission", "per_1"); return !ok && answered })
	if _, ok, answered := ph.Pending("permission", "per_9"); ok || answered {
		t.Error("an unknown request is pending or answered")
	}
}

// TestHubHidesRevertedMessages: a pending undo hides its messages from the conversation, the
// page learns the prompt it undid, and neither the snapshot nor the diff of the undo passes.
func TestHubHidesRevertedMessages(t *testing.T) {
	h, f := newTestHub(t, 0)
	ph := h.Acquire("p1")
	defer ph.Release()
	ctx := context.Background()
	if _, err := ph.Conversation(ctx, "ses_a"); err != nil {
		t.Fatal(err)
	}
	f.events <- `{"id":"evt_1","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_2","sessionID":"ses_a","role":"user","time":{"created":2}}}}`
	f.events <- `{"id":"evt_2","type":"message.part.updated","properties":{"sessionID":"ses_a","part":{"id":"prt_2","sessionID":"ses_a","messageID":"msg_2","type":"text","text":"write the file"}}}`
	f.events <- `{"id":"evt_3","type":"message.updated","properties":{"sessionID":"ses_a","info":{"id":"msg_3","sessionID":"ses_a","role":"assistant","time":{"created":3}}}}`
	f.events <- `{"id":"evt_4","type":"session.updated","properties":{"sessionID":"ses_a","info":{"id":"ses_a","title":"t","time":{"created":1,"updated":4},"revert":{"messageID":"msg_2","snapshot":"abc123","diff":"SECRET-DIFF"}}}}`
	var conv *Conversation
	waitFor(t, "the revert", func() bool {
		conv, _ = ph.Conversation(ctx, "ses_a")
		return conv.Revert != nil
	})
	if len(conv.Messages) != 1 || conv.Messages[0].Info.ID != "msg_1" {
		t.Errorf("messages after the revert: %+v", conv.Messages)
	}
	if r := conv.Revert; r.MessageID != "msg_2" || r.Messages != 2 || r.Prompt != "write the file" {
		t.Errorf("revert = %+v", r)
	}
	evs, _, _ := ph.Since(0)
	for _, ev := range evs {
		if strings.Contains(string(ev.Data), "SECRET-DIFF") || strings.Contains(string(ev.Data), "abc123") {
			t.Errorf("%s passed the revert's snapshot or diff: %s", ev.Type, ev.Data)
		}
	}
	f.events <- `{"id":"evt_5","type":"session.updated","properties":{"sessionID":"ses_a","info":{"id":"ses_a","title":"t","time":{"created":1,"updated":5}}}}`
	waitFor(t, "the restore", func() bool {
		conv, _ = ph.Conversation(ctx, "ses_a")
		return conv.Revert == nil && len(conv.Messages) == 3
	})
}

// TestReconnectSkipsTheBackoff: a workspace that answers again (its new port recorded) is
// reached at once after Reconnect, not after the backoff grown while it was down.
func TestReconnectSkipsTheBackoff(t *testing.T) {
	f := &fakeOpenCode{events: make(chan string, 10)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var up atomic.Bool
	var tries atomic.Int32
	h := New(func(context.Context, string) (*opencode.Client, error) {
		tries.Add(1)
		if !up.Load() {
			return nil, fmt.Errorf("the workspace does not answer yet")
		}
		return opencode.New(srv.URL, "pw", srv.Client()), nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Minute)
	defer h.Close()
	h.eager = 0 // the backoff grows past a second from the start
	ph := h.Acquire("p1")
	defer ph.Release()
	// 250 ms, 500 ms, 1 s: by the fourth try the next wait is 2 s or more.
	waitFor(t, "the backoff to grow", func() bool { return tries.Load() >= 4 })
	up.Store(true)
	start := time.Now()
	h.Reconnect("p1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ph.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("reached %s after Reconnect: the backoff was waited out", took)
	}
}

// TestKnowsFollowsTheSnapshot: a session whose messages the hub read is known until it is
// deleted; one never read is not.
func TestKnowsFollowsTheSnapshot(t *testing.T) {
	h, f := newTestHub(t, time.Minute)
	ph := h.Acquire("p1")
	defer ph.Release()
	if ph.Knows("ses_a") {
		t.Fatal("a session never read is known")
	}
	if _, err := ph.Conversation(context.Background(), "ses_a"); err != nil {
		t.Fatal(err)
	}
	if !ph.Knows("ses_a") {
		t.Fatal("a session read is not known")
	}
	f.events <- `{"id":"evt_1","type":"session.deleted","properties":{"info":{"id":"ses_a","title":"t","time":{"created":1,"updated":2}}}}`
	waitFor(t, "the deleted session to be forgotten", func() bool { return !ph.Knows("ses_a") })
}
