package activities

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Projects writes setup progress and life-cycle moves to the project row, for lists and pages.
type Projects struct {
	Store   *store.Store
	Metrics *metrics.Metrics // optional
	Idle    IdleWatcher
}

// IdleWatcher starts a project's idle watch or resets the running one (setups.Service does).
type IdleWatcher interface {
	WatchIdle(ctx context.Context, projectID string) error
}

// RecordProgress stores the setup's current step and status.
func (a *Projects) RecordProgress(ctx context.Context, u workflows.ProgressUpdate) error {
	var progress string
	if u.Progress != nil {
		b, err := json.Marshal(u.Progress)
		if err != nil {
			return err
		}
		progress = string(b)
	}
	err := a.Store.RecordSetupProgress(ctx, u.ProjectID, u.Step, u.Status, u.Error, progress)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted meanwhile: nothing to record
	}
	if err == nil && a.Metrics != nil {
		switch u.Status {
		case status.Ready, status.Cancelled:
			a.Metrics.SetupsEnded.WithLabelValues(string(u.Status)).Inc()
		case status.SetupFailed:
			a.Metrics.SetupStepFailures.WithLabelValues(u.Step).Inc()
		}
	}
	return err
}

// MarkDeleted marks a torn-down project deleted.
func (a *Projects) MarkDeleted(ctx context.Context, in workflows.StepInput) error {
	return a.Store.MarkProjectDeleted(ctx, in.ProjectID)
}

// Transition moves the project between life-cycle states, only from the states given.
func (a *Projects) Transition(ctx context.Context, in workflows.TransitionInput) (bool, error) {
	return a.Store.TransitionProject(ctx, in.ProjectID, in.From, in.To, in.Error)
}

// WatchIdle starts the project's idle watch, now that its workspace runs.
func (a *Projects) WatchIdle(ctx context.Context, in workflows.StepInput) error {
	return a.Idle.WatchIdle(ctx, in.ProjectID)
}
