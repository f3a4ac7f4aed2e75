package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/status"
)

const (
	eventsPoll     = 500 * time.Millisecond
	eventsLifetime = 5 * time.Minute // then the browser reconnects, resuming from its last event
)

// projectEvents streams the project page's status block as server-sent events, whenever it
// changes, for as long as the page is open: an open page keeps a ready workspace from being
// stopped as idle. Each event's id is a hash of what it shows, so a reconnecting browser
// (which sends Last-Event-ID) is not sent what it already has.
func (s *Server) projectEvents(c *gin.Context) {
	p := project(c)
	w := c.Writer
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	last := c.GetHeader("Last-Event-ID")
	ctx := c.Request.Context()
	tick := time.NewTicker(eventsPoll)
	defer tick.Stop()
	end := time.After(eventsLifetime)
	var shown time.Time  // the row version last rendered
	var shownHost string // and the state of its host then
	var used time.Time   // when this stream last told the idle watch someone looks
	for {
		// A setup's steps move inside Temporal between row updates: ask every tick. Otherwise
		// only a changed row (or its host going away or coming back) can change the block, and
		// the stream costs one row read a tick.
		v := s.projectView(c, p)
		if setupLive(p.Status) || !p.UpdatedAt.Equal(shown) || v.HostState != shownHost {
			shown, shownHost = p.UpdatedAt, v.HostState
			v.Progress = s.projects.Progress(ctx, p)
			var buf bytes.Buffer
			if err := s.pages["project.html"].ExecuteTemplate(&buf, "progress", v); err != nil {
				s.Log.Error("render progress failed", "error", err)
				return
			}
			sum := sha256.Sum256(buf.Bytes())
			if id := hex.EncodeToString(sum[:8]); id != last {
				fmt.Fprintf(w, "id: %s\nevent: progress\n", id)
				for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
					fmt.Fprintf(w, "data: %s\n", line)
				}
				fmt.Fprint(w, "\n")
				w.Flush()
				last = id
			}
		}
		if p.Status == status.Cancelled || p.Status == status.Deleted {
			return
		}
		// An open page is someone using the workspace: it stays up while the stream is open.
		if p.Status == status.Ready && time.Since(used) >= s.Setups.ActivityEvery() {
			used = time.Now()
			s.projects.RecordActivity(c.Request.Context(), p)
		}
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
		fresh, err := s.Store.Project(ctx, p.ID)
		if err != nil {
			return
		}
		p = fresh
	}
}

// setupLive reports whether a project's setup may be moving.
func setupLive(s status.Project) bool {
	return s == status.Pending || s == status.SettingUp || s == status.SetupFailed
}

// writeEvent writes one server-sent event.
func writeEvent(w interface{ Write([]byte) (int, error) }, id, typ string, data []byte) error {
	_, err := fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, typ, data)
	return err
}
