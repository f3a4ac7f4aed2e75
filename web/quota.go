package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/store"
)

// Quotas bound what each user holds (DOCE_QUOTA_*); 0 means no limit.
type Quotas struct {
	Projects      int // projects not deleted
	Running       int // workspaces running (or being set up or started) at once
	CreatePerHour int // projects made in any hour, deleted ones too
}

// quotaWindow is the span CreatePerHour counts over.
const quotaWindow = time.Hour

// checkCreate refuses a new project past the user's quotas: 403 for what they hold, 429 (with
// Retry-After) for how fast they make projects.
func (s *Server) checkCreate(c *gin.Context, userID string) error {
	ctx := c.Request.Context()
	since := time.Now().Add(-quotaWindow)
	u, err := s.Store.ProjectUsage(ctx, userID, since)
	if err != nil {
		return err
	}
	q := s.Quotas
	switch {
	case q.CreatePerHour > 0 && u.CreatedSince >= q.CreatePerHour:
		wait, err := s.untilFreed(ctx, userID, since)
		if err != nil {
			return err
		}
		c.Header("Retry-After", strconv.Itoa(int(wait.Seconds())))
		return &Error{Status: http.StatusTooManyRequests, Code: "quota_rate", Message: fmt.Sprintf(
			"You made %d projects in the last hour, the most allowed. Try again in %s.", u.CreatedSince, wait.Round(time.Minute).String())}
	case q.Projects > 0 && u.Projects >= q.Projects:
		return &Error{Status: http.StatusForbidden, Code: "quota_projects", Message: fmt.Sprintf(
			"You have %d projects, the most allowed. Delete one to make another, or ask an administrator for more.", u.Projects)}
	}
	if err := s.checkRunning(u); err != nil {
		return err
	}
	return s.checkRoom(ctx)
}

// checkRoom refuses a new project while every host that takes new projects is full (its
// workspace limit, or its engine's address pools, reached): its setup could not be placed.
// Hosts that are away or drained do not count: a setup waits for those.
func (s *Server) checkRoom(ctx context.Context) error {
	if s.Hosts == nil {
		return nil
	}
	list, err := s.Hosts.List(ctx)
	if err != nil {
		return err
	}
	now, full := time.Now(), 0
	for i := range list {
		h := &list[i]
		if h.State(now) != store.HostReady {
			continue
		}
		if h.Room() != 0 {
			return nil
		}
		full++
	}
	if full == 0 {
		return nil
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "no_room",
		Message: "Every Docker host is full: no workspace can be made now. Delete a project you no longer need, or ask an administrator to add room."}
}

// checkStart refuses to start a workspace past the user's running quota.
func (s *Server) checkStart(ctx context.Context, userID string) error {
	u, err := s.Store.ProjectUsage(ctx, userID, time.Now())
	if err != nil {
		return err
	}
	return s.checkRunning(u)
}

func (s *Server) checkRunning(u store.Usage) error {
	if q := s.Quotas.Running; q > 0 && u.Running >= q {
		return &Error{Status: http.StatusForbidden, Code: "quota_running", Message: fmt.Sprintf(
			"%d of your workspaces are running, the most allowed at once. Stop one of them first.", u.Running)}
	}
	return nil
}

// untilFreed is how long until the oldest project made in the window leaves it.
func (s *Server) untilFreed(ctx context.Context, userID string, since time.Time) (time.Duration, error) {
	oldest, err := s.Store.OldestCreatedSince(ctx, userID, since)
	if err != nil {
		return 0, err
	}
	return max(time.Until(oldest.Add(quotaWindow)), time.Second), nil
}
