package projects

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/store"
)

// Quotas bound what each user holds (DOCE_QUOTA_*); 0 means no limit.
type Quotas struct {
	Projects      int // projects not deleted
	Running       int // workspaces running (or being set up or started) at once
	CreatePerHour int // projects made in any hour, deleted ones too
}

// over is q with what the administrator set for one user in place of the defaults.
func (q Quotas) over(own store.UserQuota) Quotas {
	for _, f := range []struct {
		own *int
		to  *int
	}{{own.Projects, &q.Projects}, {own.Running, &q.Running}, {own.CreatePerHour, &q.CreatePerHour}} {
		if f.own != nil {
			*f.to = *f.own
		}
	}
	return q
}

// quotasOf is the quotas userID is held to: the defaults, and the administrator's for them.
func (s *Service) quotasOf(ctx context.Context, userID string) (Quotas, error) {
	own, err := s.Store.UserQuota(ctx, userID)
	if err != nil {
		return Quotas{}, err
	}
	return s.Quotas.over(own), nil
}

// quotaWindow is the span CreatePerHour counts over.
const quotaWindow = time.Hour

// CheckCreate refuses a new project past the user's quotas: 403 for what they hold, 429 (with
// RetryAfter) for how fast they make projects, 503 while no host has room for it.
func (s *Service) CheckCreate(ctx context.Context, userID string) error {
	since := time.Now().Add(-quotaWindow)
	u, err := s.Store.ProjectUsage(ctx, userID, since)
	if err != nil {
		return err
	}
	q, err := s.quotasOf(ctx, userID)
	if err != nil {
		return err
	}
	switch {
	case q.CreatePerHour > 0 && u.CreatedSince >= q.CreatePerHour:
		wait, err := s.untilFreed(ctx, userID, since)
		if err != nil {
			return err
		}
		e := httperr.New(http.StatusTooManyRequests, "quota_rate", fmt.Sprintf(
			"You made %d projects in the last hour, the most allowed. Try again in %s.", u.CreatedSince, wait.Round(time.Minute).String()))
		e.RetryAfter = wait
		return e

	case q.Projects > 0 && u.Projects >= q.Projects:
		return httperr.New(http.StatusForbidden, "quota_projects", fmt.Sprintf(
			"You have %d projects, the most allowed. Delete one to make another, or ask an administrator for more.", u.Projects))

	}
	if err := checkRunning(q, u); err != nil {
		return err
	}
	return s.checkRoom(ctx)
}

// checkRoom refuses a new project while every host that takes new projects is full (its
// workspace limit, or its engine's address pools, reached): its setup could not be placed.
// Hosts that are away or drained do not count: a setup waits for those.
func (s *Service) checkRoom(ctx context.Context) error {
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
	return httperr.New(http.StatusServiceUnavailable, "no_room",
		"Every Docker host is full: no workspace can be made now. Delete a project you no longer need, or ask an administrator to add room.")

}

// CheckStart refuses to start a workspace past the user's running quota.
func (s *Service) CheckStart(ctx context.Context, userID string) error {
	u, err := s.Store.ProjectUsage(ctx, userID, time.Now())
	if err != nil {
		return err
	}
	q, err := s.quotasOf(ctx, userID)
	if err != nil {
		return err
	}
	return checkRunning(q, u)
}

func checkRunning(q Quotas, u store.Usage) error {
	if q.Running > 0 && u.Running >= q.Running {
		return httperr.New(http.StatusForbidden, "quota_running", fmt.Sprintf(
			"%d of your workspaces are running, the most allowed at once. Stop one of them first.", u.Running))

	}
	return nil
}

// untilFreed is how long until the oldest project made in the window leaves it.
func (s *Service) untilFreed(ctx context.Context, userID string, since time.Time) (time.Duration, error) {
	oldest, err := s.Store.OldestCreatedSince(ctx, userID, since)
	if err != nil {
		return 0, err
	}
	return max(time.Until(oldest.Add(quotaWindow)), time.Second), nil
}

// maxQuota bounds what an administrator may set: past it a quota means nothing.
const maxQuota = 100000

// ErrQuotaValue is the refusal of a quota that is not a whole number from 0 to maxQuota.
func ErrQuotaValue(field string) *httperr.Error {
	return httperr.Invalid(field, fmt.Sprintf("A quota is a whole number from 0 (no limit) to %d, or empty for the default.", maxQuota))
}

// QuotaInput is an administrator's quotas for one user: a number replaces the default (0: no
// limit), null keeps it.
type QuotaInput struct {
	Projects      *int `json:"projects"`
	Running       *int `json:"running"`
	CreatePerHour *int `json:"createPerHour"`
}

// QuotaView is what a user is held to, and which of it the administrator set for them.
type QuotaView struct {
	Own       QuotaInput `json:"own"`
	Effective struct {
		Projects      int `json:"projects"`
		Running       int `json:"running"`
		CreatePerHour int `json:"createPerHour"`
	} `json:"effective"`
}

// QuotaOf is what userID is held to.
func (s *Service) QuotaOf(ctx context.Context, userID string) (QuotaView, error) {
	own, err := s.Store.UserQuota(ctx, userID)
	if err != nil {
		return QuotaView{}, err
	}
	var v QuotaView
	v.Own = QuotaInput{Projects: own.Projects, Running: own.Running, CreatePerHour: own.CreatePerHour}
	q := s.Quotas.over(own)
	v.Effective.Projects, v.Effective.Running, v.Effective.CreatePerHour = q.Projects, q.Running, q.CreatePerHour
	return v, nil
}

// SetQuota stores in as userID's quotas, with an audit event naming the administrator actorID.
func (s *Service) SetQuota(ctx context.Context, actorID, userID string, in QuotaInput) error {
	for _, f := range []struct {
		field string
		v     *int
	}{{"projects", in.Projects}, {"running", in.Running}, {"createPerHour", in.CreatePerHour}} {
		if f.v != nil && (*f.v < 0 || *f.v > maxQuota) {
			return ErrQuotaValue(f.field)
		}
	}
	if _, err := s.Store.UserByID(ctx, userID); errors.Is(err, store.ErrNotFound) {
		return httperr.NotFound("user")
	} else if err != nil {
		return err
	}
	if err := s.Store.SetUserQuota(ctx, store.UserQuota{UserID: userID, Projects: in.Projects, Running: in.Running, CreatePerHour: in.CreatePerHour}); err != nil {
		return err
	}
	return s.Store.Audit(ctx, nil, store.AuditEvent{ActorID: actorID, Action: "user.quota", TargetType: "user", TargetID: userID,
		Detail: fmt.Sprintf("projects=%s running=%s createPerHour=%s", quotaText(in.Projects), quotaText(in.Running), quotaText(in.CreatePerHour))})
}

func quotaText(v *int) string {
	if v == nil {
		return "default"
	}
	return strconv.Itoa(*v)
}
