// Package hub keeps one upstream GET /event per project someone watches and fans it out to
// every tab (docs/conversation.md is the contract). It allow-lists what passes, numbers events
// for resumption, and keeps the watched sessions' messages current from the same events, so
// that a snapshot and the events after its cursor never overlap or leave a gap.
package hub

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/store"
)

const (
	ringEvents    = 4096     // events kept for resuming
	ringBytes     = 16 << 20 // and at most this much of them
	hubGrace      = 30 * time.Second
	maxBackoff    = 5 * time.Second
	eagerFor      = 30 * time.Second // an outage this young is retried every second at most
	connectWait   = 10 * time.Second // a request waits this long for a cold hub to reach OpenCode
	snapshotLimit = 32               // sessions whose messages a hub keeps
)

// Event is one event as the browser gets it.
type Event struct {
	Seq  uint64
	Type string
	Data []byte
}

// Hub holds the projects' subscriptions.
type Hub struct {
	// connect returns a client of the project's OpenCode, read afresh at every (re)connect: a
	// restarted workspace has a new port.
	connect func(ctx context.Context, projectID string) (*opencode.Client, error)
	log     *slog.Logger
	grace   time.Duration
	eager   time.Duration // eagerFor; tests shorten it
	// OnConnect runs (in its own goroutine) each time a subscription comes up.
	OnConnect func(ctx context.Context, projectID string, oc *opencode.Client)
	mu        sync.Mutex
	byProj    map[string]*Project
}

// New returns a hub that reaches a project's OpenCode through connect and keeps a subscription
// nobody watches for grace (30 s when zero).
func New(connect func(context.Context, string) (*opencode.Client, error), log *slog.Logger, grace time.Duration) *Hub {
	if grace <= 0 {
		grace = hubGrace
	}
	return &Hub{connect: connect, log: log, grace: grace, eager: eagerFor, byProj: map[string]*Project{}}
}

// Project is one project's upstream subscription and what it learned from it.
type Project struct {
	h         *Hub
	projectID string
	epoch     string

	mu        sync.Mutex
	refs      int
	idle      *time.Timer
	cancel    context.CancelFunc
	connected bool
	firstConn chan struct{} // closed once the first subscription is up
	client    *opencode.Client
	notify    map[chan struct{}]struct{}
	retry     chan struct{} // Reconnect's nudge: try again now rather than after the backoff

	seq    uint64
	ring   []Event
	bytes  int
	status map[string]opencode.SessionStatus
	perms  map[string]opencode.Permission
	quests map[string]opencode.Question
	// answered remembers requests replied to, so a second answer is a conflict, not unknown.
	answered map[string]bool
	snaps    map[string]*sessionSnap
	loads    map[string]*snapLoad
	// reverts are the sessions' pending undos: their messages from the named one on are
	// hidden from the conversation until restored (OpenCode deletes them at the next prompt).
	reverts map[string]*opencode.SessionRevert
}

// sessionSnap is one session's messages as the events have left them.
type sessionSnap struct {
	msgs []*opencode.Message
	used time.Time
}

// close ends every upstream subscription.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, ph := range h.byProj {
		ph.cancel()
		delete(h.byProj, id)
	}
}

// acquire returns the project's hub, starting its upstream when it has none; release it when done.
func (h *Hub) Acquire(projectID string) *Project {
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.byProj[projectID]
	if ph == nil {
		ph = &Project{
			h: h, projectID: projectID, epoch: hex.EncodeToString(store.RandomToken(4)),
			firstConn: make(chan struct{}), notify: map[chan struct{}]struct{}{}, retry: make(chan struct{}, 1),
			status: map[string]opencode.SessionStatus{}, perms: map[string]opencode.Permission{},
			quests: map[string]opencode.Question{}, answered: map[string]bool{}, snaps: map[string]*sessionSnap{},
			loads:   map[string]*snapLoad{},
			reverts: map[string]*opencode.SessionRevert{},
		}
		ctx, cancel := context.WithCancel(context.Background())
		ph.cancel = cancel
		h.byProj[projectID] = ph
		go ph.run(ctx)
	}
	ph.mu.Lock()
	ph.refs++
	if ph.idle != nil {
		ph.idle.Stop()
		ph.idle = nil
	}
	ph.mu.Unlock()
	return ph
}

// Reconnect makes the project's subscription, if it is down, try again at once: the caller
// knows the workspace answers now (its new address is recorded).
func (h *Hub) Reconnect(projectID string) {
	h.mu.Lock()
	ph := h.byProj[projectID]
	h.mu.Unlock()
	if ph == nil {
		return
	}
	select {
	case ph.retry <- struct{}{}:
	default: // a nudge is pending already
	}
}

// Release drops a reference; the upstream closes after the grace period without any.
func (ph *Project) Release() {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.refs--
	if ph.refs > 0 {
		return
	}
	ph.idle = time.AfterFunc(ph.h.grace, func() {
		ph.h.mu.Lock()
		defer ph.h.mu.Unlock()
		ph.mu.Lock()
		defer ph.mu.Unlock()
		if ph.refs > 0 || ph.h.byProj[ph.projectID] != ph {
			return
		}
		delete(ph.h.byProj, ph.projectID)
		ph.cancel()
	})
}

// run keeps the subscription up until the hub is closed, reconnecting with backoff. After a
// gap the events in between are lost, so watchers get a reset and the snapshots are dropped.
// For the first half minute of an outage it tries every second at most: a workspace Docker
// restarted answers a few seconds later, and its owner is waiting for it.
func (ph *Project) run(ctx context.Context) {
	backoff := 250 * time.Millisecond
	everConnected, announced := false, false
	var down time.Time // when the outage began
	for ctx.Err() == nil {
		err := ph.subscribe(ctx, &everConnected)
		if ctx.Err() != nil {
			return
		}
		ph.h.log.Debug("workspace event stream ended", "project_id", ph.projectID, "error", err)
		ph.mu.Lock()
		if ph.connected || !announced {
			// Said once per outage, and once before the first connection, so a page can show
			// "starting" while doce starts the workspace.
			ph.connected, announced = false, true
			ph.emitLocked("workspace.status", map[string]string{"state": "unavailable"})
			backoff, down = 250*time.Millisecond, time.Now()
		}
		ph.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			limit := maxBackoff
			if time.Since(down) < ph.h.eager {
				limit = time.Second
			}
			backoff = min(backoff*2, limit)
		case <-ph.retry:
			backoff = 250 * time.Millisecond
		}
	}
}

func (ph *Project) subscribe(ctx context.Context, everConnected *bool) error {
	c, err := ph.h.connect(ctx, ph.projectID)
	if err != nil {
		return err
	}
	events, err := c.Events(ctx)
	if err != nil {
		return err
	}
	defer events.Close()
	// Subscribed first, read second: what changes meanwhile arrives as events too.
	status, err := c.SessionStatuses(ctx)
	if err != nil {
		return err
	}
	perms, err := c.Permissions(ctx)
	if err != nil {
		return err
	}
	quests, err := c.Questions(ctx)
	if err != nil {
		return err
	}
	ph.mu.Lock()
	ph.client, ph.connected = c, true
	ph.status = status
	ph.perms = map[string]opencode.Permission{}
	for _, pr := range perms {
		ph.perms[pr.ID] = pr
	}
	ph.quests = map[string]opencode.Question{}
	for _, q := range quests {
		ph.quests[q.ID] = q
	}
	if *everConnected {
		clear(ph.snaps)
		clear(ph.reverts) // read again with each session's snapshot
		ph.emitLocked("reset", map[string]string{"reason": "doce lost the workspace's event stream for a moment"})
	} else {
		close(ph.firstConn)
	}
	*everConnected = true
	ph.emitLocked("workspace.status", map[string]string{"state": "connected"})
	ph.mu.Unlock()
	if ph.h.OnConnect != nil {
		go ph.h.OnConnect(ctx, ph.projectID, c)
	}

	for {
		ev, err := events.Next()
		if err != nil {
			return err
		}
		ph.apply(ev)
	}
}

// apply takes one upstream event: the types the page follows (opencode.Event.Decode, whose
// types hold only allow-listed fields) update what the hub keeps and pass on, numbered.
func (ph *Project) apply(ev opencode.Event) {
	v, ok := ev.Decode()
	if !ok {
		return
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	var sessionID string
	switch v := v.(type) {
	case opencode.MessageUpdated:
		sessionID = v.SessionID
		ph.snapLocked(sessionID, v)
	case opencode.MessageRemoved:
		sessionID = v.SessionID
		ph.snapLocked(sessionID, v)
	case opencode.PartUpdated:
		sessionID = v.SessionID
		ph.snapLocked(sessionID, v)
	case opencode.PartDelta:
		if v.Field != "text" {
			return // only text grows by deltas in what the page shows
		}
		sessionID = v.SessionID
		ph.snapLocked(sessionID, v)
	case opencode.PartRemoved:
		sessionID = v.SessionID
		ph.snapLocked(sessionID, v)
	case opencode.SessionChanged:
		sessionID = v.SessionID
		if ev.Type == "session.deleted" {
			ph.forgetLocked(sessionID)
		} else {
			ph.setRevertLocked(sessionID, v.Info.Revert)
		}
	case opencode.SessionCompacted:
		sessionID = v.SessionID
	case opencode.SessionStatusChanged:
		sessionID = v.SessionID
		if v.Status.Type == "idle" {
			delete(ph.status, sessionID)
		} else {
			ph.status[sessionID] = v.Status
		}
	case opencode.SessionIdle:
		sessionID = v.SessionID
		delete(ph.status, sessionID)
	case opencode.SessionFailed:
		sessionID = v.SessionID
	case opencode.Permission:
		sessionID = v.SessionID
		ph.perms[v.ID] = v
	case opencode.PermissionReplied:
		sessionID = v.SessionID
		delete(ph.perms, v.RequestID)
		ph.answered[v.RequestID] = true
	case opencode.Question:
		sessionID = v.SessionID
		ph.quests[v.ID] = v
	case opencode.QuestionAnswered:
		sessionID = v.SessionID
		delete(ph.quests, v.RequestID)
		ph.answered[v.RequestID] = true
	case opencode.TodoUpdated:
		sessionID = v.SessionID
	case opencode.FileEdited, opencode.PTYExited:
		ph.emitLocked(ev.Type, v) // the workspace's, not a session's
		return
	}
	if sessionID == "" {
		return // every passed session event names its session, so the page can filter
	}
	ph.emitLocked(ev.Type, v)
}

// snapLocked applies a conversation event to the session's snapshot, or keeps it for the
// snapshot being read from OpenCode right now (see conversation). ph.mu is held.
func (ph *Project) snapLocked(sessionID string, ev any) {
	if s := ph.snaps[sessionID]; s != nil {
		s.apply(ev)
	} else if l := ph.loads[sessionID]; l != nil {
		l.events = append(l.events, ev)
	}
}

// apply changes the snapshot as the event says. A delta grows only a part the snapshot has.
func (s *sessionSnap) apply(ev any) {
	switch v := ev.(type) {
	case opencode.MessageUpdated:
		if m := s.message(v.Info.ID); m != nil {
			m.Info = v.Info
		} else {
			s.msgs = append(s.msgs, &opencode.Message{Info: v.Info})
		}
	case opencode.MessageRemoved:
		s.msgs = slices.DeleteFunc(s.msgs, func(m *opencode.Message) bool { return m.Info.ID == v.MessageID })
	case opencode.PartUpdated:
		if m := s.message(v.Part.MessageID); m != nil {
			if i := slices.IndexFunc(m.Parts, func(p opencode.Part) bool { return p.ID == v.Part.ID }); i >= 0 {
				m.Parts[i] = v.Part
			} else {
				m.Parts = append(m.Parts, v.Part)
			}
		}
	case opencode.PartDelta:
		if m := s.message(v.MessageID); m != nil {
			if i := slices.IndexFunc(m.Parts, func(p opencode.Part) bool { return p.ID == v.PartID }); i >= 0 {
				m.Parts[i].Text += v.Delta
			}
		}
	case opencode.PartRemoved:
		if m := s.message(v.MessageID); m != nil {
			m.Parts = slices.DeleteFunc(m.Parts, func(p opencode.Part) bool { return p.ID == v.PartID })
		}
	}
}

// replay applies the events that arrived while the snapshot was read. The read may already
// hold any of them: a full message or part replaces itself, so those are safe twice; a delta
// is not, so it only grows a part that one of these events (re)placed, never one from the read.
func (s *sessionSnap) replay(evs []any) {
	placed := map[string]bool{}
	for _, ev := range evs {
		switch v := ev.(type) {
		case opencode.PartUpdated:
			placed[v.Part.ID] = true
		case opencode.PartDelta:
			if !placed[v.PartID] {
				continue
			}
		}
		s.apply(ev)
	}
}

func (s *sessionSnap) message(id string) *opencode.Message {
	for _, m := range s.msgs {
		if m.Info.ID == id {
			return m
		}
	}
	return nil
}

// emitLocked numbers an event, keeps it in the ring and wakes the watchers. ph.mu is held.
func (ph *Project) emitLocked(typ string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ph.h.log.Error("unable to encode a stream event", "type", typ, "error", err)
		return
	}
	ph.seq++
	ph.ring = append(ph.ring, Event{Seq: ph.seq, Type: typ, Data: b})
	ph.bytes += len(b)
	drop := 0
	for len(ph.ring)-drop > ringEvents || ph.bytes > ringBytes && len(ph.ring)-drop > 1 {
		ph.bytes -= len(ph.ring[drop].Data)
		drop++
	}
	if drop > 0 {
		ph.ring = slices.Delete(ph.ring, 0, drop)
	}
	for ch := range ph.notify {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// id is the stream id of seq in this hub.
func (ph *Project) EventID(seq uint64) string { return ph.epoch + "." + strconv.FormatUint(seq, 10) }

// resumeFrom parses a Last-Event-ID (or ?after=). ok is false when it cannot resume from it:
// another epoch, or older than the ring holds. An empty id resumes from now.
func (ph *Project) ResumeFrom(last string) (seq uint64, ok bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if last == "" {
		return ph.seq, true
	}
	epoch, n, found := strings.Cut(last, ".")
	seq, err := strconv.ParseUint(n, 10, 64)
	if !found || err != nil || epoch != ph.epoch || seq > ph.seq {
		return ph.seq, false
	}
	if len(ph.ring) > 0 && seq+1 < ph.ring[0].Seq {
		return ph.seq, false
	}
	return seq, true
}

// since returns the events after seq; lost is true when the ring no longer holds them all.
func (ph *Project) Since(seq uint64) (evs []Event, last uint64, lost bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if len(ph.ring) > 0 && seq+1 < ph.ring[0].Seq {
		return nil, ph.seq, true
	}
	i, _ := slices.BinarySearchFunc(ph.ring, seq+1, func(e Event, s uint64) int { return cmpUint(e.Seq, s) })
	return slices.Clone(ph.ring[i:]), ph.seq, false
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// watch registers a wake-up channel for new events.
func (ph *Project) Watch() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	ph.mu.Lock()
	ph.notify[ch] = struct{}{}
	ph.mu.Unlock()
	return ch, func() {
		ph.mu.Lock()
		delete(ph.notify, ch)
		ph.mu.Unlock()
	}
}

// ErrUnavailable means the workspace's OpenCode does not answer.
var ErrUnavailable = errors.New("the workspace does not answer")

// ready waits until the hub reached OpenCode once, and returns its client.
func (ph *Project) Ready(ctx context.Context) (*opencode.Client, error) {
	t := time.NewTimer(connectWait)
	defer t.Stop()
	select {
	case <-ph.firstConn:
	case <-t.C:
		return nil, ErrUnavailable
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if !ph.connected {
		return nil, ErrUnavailable
	}
	return ph.client, nil
}

// Conversation is what GET messages answers: a session's messages and what is pending in it,
// up to and including the event numbered Cursor.
type Conversation struct {
	SessionID   string                 `json:"sessionId"`
	Status      opencode.SessionStatus `json:"status"`
	Messages    []opencode.Message     `json:"messages"`
	Permissions []opencode.Permission  `json:"permissions"`
	Questions   []opencode.Question    `json:"questions"`
	// Revert is the pending undo: its messages are left out of Messages until restored.
	Revert *RevertView `json:"revert,omitempty"`
	Cursor string      `json:"cursor"`
}

// RevertView is a pending undo as the page shows it: "N messages rolled back · Restore", with
// the composer holding the prompt that was undone.
type RevertView struct {
	MessageID string `json:"messageId"`
	Messages  int    `json:"messages"`
	Prompt    string `json:"prompt,omitempty"`
}

// promptOf is the text a user message sent.
func promptOf(m *opencode.Message) string {
	var b strings.Builder
	for _, p := range m.Parts {
		if p.Type == "text" && !p.Synthetic {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// forget drops what the hub keeps of a deleted session.
func (ph *Project) Forget(sessionID string) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.forgetLocked(sessionID)
}

func (ph *Project) forgetLocked(sessionID string) {
	delete(ph.snaps, sessionID)
	delete(ph.reverts, sessionID)
}

// setRevert records the session's pending undo (nil: none) as OpenCode answered it, so the
// next read shows it without waiting for the event.
func (ph *Project) SetRevert(sessionID string, rev *opencode.SessionRevert) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	ph.setRevertLocked(sessionID, rev)
}

func (ph *Project) setRevertLocked(sessionID string, rev *opencode.SessionRevert) {
	if rev == nil || rev.MessageID == "" {
		delete(ph.reverts, sessionID)
		return
	}
	ph.reverts[sessionID] = rev
}

// conversation returns the session's messages, from the hub's snapshot when it has one and
// from OpenCode otherwise (then kept, and updated by the events that follow). The events that
// arrive while OpenCode is read are kept and applied to what it answered: without them a
// message made during the read would be missing from the snapshot and from every page that
// resumes after it.
func (ph *Project) Conversation(ctx context.Context, sessionID string) (*Conversation, error) {
	c, err := ph.Ready(ctx)
	if err != nil {
		return nil, err
	}
	ph.mu.Lock()
	snap := ph.snaps[sessionID]
	var l *snapLoad
	if snap == nil {
		if l = ph.loads[sessionID]; l == nil {
			l = &snapLoad{}
			ph.loads[sessionID] = l
		}
		l.readers++
	}
	ph.mu.Unlock()
	if snap == nil {
		msgs, ss, err := readConversation(ctx, c, sessionID)
		ph.mu.Lock()
		if l.readers--; l.readers == 0 {
			delete(ph.loads, sessionID)
		}
		if err != nil {
			ph.mu.Unlock()
			return nil, err
		}
		if snap = ph.snaps[sessionID]; snap == nil { // else another reader made it first
			snap = &sessionSnap{}
			for i := range msgs {
				snap.msgs = append(snap.msgs, &msgs[i])
			}
			snap.replay(l.events)
			ph.evictLocked()
			ph.snaps[sessionID] = snap
			ph.setRevertLocked(sessionID, ss.Revert)
		}
		ph.mu.Unlock()
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.conversationLocked(sessionID, snap), nil
}

// snapLoad gathers the events for a session whose snapshot is being read.
type snapLoad struct {
	readers int
	events  []any
}

func readConversation(ctx context.Context, c *opencode.Client, sessionID string) ([]opencode.Message, opencode.Session, error) {
	msgs, err := c.Messages(ctx, sessionID)
	if err != nil {
		return nil, opencode.Session{}, err
	}
	ss, err := c.Session(ctx, sessionID)
	return msgs, ss, err
}

// Knows says whether the hub follows the session's messages: the session existed as of the
// last event (a deleted session is forgotten), so a caller need not ask OpenCode.
func (ph *Project) Knows(sessionID string) bool {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.snaps[sessionID] != nil
}

// RoleOf is the role of message id in the session, hidden by an undo or not; "" when the
// session has no such message. It reads the hub's snapshot (making it when there is none).
func (ph *Project) RoleOf(ctx context.Context, sessionID, id string) (string, error) {
	if _, err := ph.Conversation(ctx, sessionID); err != nil {
		return "", err
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if s := ph.snaps[sessionID]; s != nil {
		if m := s.message(id); m != nil {
			return m.Info.Role, nil
		}
	}
	return "", nil
}

// peekConversation is the session's conversation when a hub holds it already, else nil: it
// never reaches OpenCode, so a page load can show it for free.
func (h *Hub) Peek(projectID, sessionID string) *Conversation {
	h.mu.Lock()
	ph := h.byProj[projectID]
	h.mu.Unlock()
	if ph == nil {
		return nil
	}
	ph.mu.Lock()
	defer ph.mu.Unlock()
	snap := ph.snaps[sessionID]
	if snap == nil {
		return nil
	}
	return ph.conversationLocked(sessionID, snap)
}

func (ph *Project) conversationLocked(sessionID string, snap *sessionSnap) *Conversation {
	snap.used = time.Now()
	conv := &Conversation{SessionID: sessionID, Status: opencode.SessionStatus{Type: "idle"},
		Messages: make([]opencode.Message, 0, len(snap.msgs)), Permissions: []opencode.Permission{}, Questions: []opencode.Question{},
		Cursor: ph.EventID(ph.seq)}
	if st, ok := ph.status[sessionID]; ok {
		conv.Status = st
	}
	rev := ph.reverts[sessionID]
	for _, m := range snap.msgs {
		if rev != nil && m.Info.ID >= rev.MessageID {
			// Hidden by the undo. OpenCode's ids sort in the order the messages were made.
			if conv.Revert == nil {
				conv.Revert = &RevertView{MessageID: rev.MessageID}
			}
			conv.Revert.Messages++
			if m.Info.ID == rev.MessageID {
				conv.Revert.Prompt = promptOf(m)
			}
			continue
		}
		conv.Messages = append(conv.Messages, opencode.Message{Info: m.Info, Parts: slices.Clone(m.Parts)})
	}
	if rev != nil && conv.Revert == nil {
		conv.Revert = &RevertView{MessageID: rev.MessageID}
	}
	for _, pr := range ph.perms {
		if pr.SessionID == sessionID {
			conv.Permissions = append(conv.Permissions, pr)
		}
	}
	for _, q := range ph.quests {
		if q.SessionID == sessionID {
			conv.Questions = append(conv.Questions, q)
		}
	}
	return conv
}

func (ph *Project) evictLocked() {
	for len(ph.snaps) >= snapshotLimit {
		var oldest string
		for id, s := range ph.snaps {
			if oldest == "" || s.used.Before(ph.snaps[oldest].used) {
				oldest = id
			}
		}
		delete(ph.snaps, oldest)
	}
}

// pending says whether a permission or question request is pending (ok), was answered
// (answered), or is unknown to the hub.
func (ph *Project) Pending(kind, id string) (sessionID string, ok, answered bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	switch kind {
	case "permission":
		if pr, found := ph.perms[id]; found {
			return pr.SessionID, true, false
		}
	case "question":
		if q, found := ph.quests[id]; found {
			return q.SessionID, true, false
		}
	}
	return "", false, ph.answered[id]
}

func (ph *Project) StatusOf(sessionID string) opencode.SessionStatus {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	if st, ok := ph.status[sessionID]; ok {
		return st
	}
	return opencode.SessionStatus{Type: "idle"}
}
