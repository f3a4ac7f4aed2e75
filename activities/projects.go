package activities

import (
	"context"
	"encoding/json"

	"github.com/doce-dev/doce/metrics"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Projects writes setup progress to the project row, for lists and pages.
type Projects struct {
	Store   *store.Store
	Metrics *metrics.Metrics // optional
}

// RecordProgress stores the setup's current step and status.
func (a *Projects) RecordProgress(ctx context.Context, u workflows.ProgressUpdate) error {
	if a.Metrics != nil && u.Status != store.ProjectSettingUp {
		a.Metrics.SetupsEnded.WithLabelValues(u.Status, u.Step).Inc()
	}
	p := &store.Project{ID: u.ProjectID, SetupStep: u.Step, Status: u.Status, SetupError: u.Error}
	cols := []string{"setup_step", "status", "setup_error"}
	if u.Progress != nil {
		b, err := json.Marshal(u.Progress)
		if err != nil {
			return err
		}
		p.SetupProgress = string(b)
		cols = append(cols, "setup_progress")
	}
	err := a.Store.UpdateProject(ctx, p, cols...)
	if err == store.ErrNotFound {
		return nil // deleted meanwhile: nothing to record
	}
	return err
}

// MarkDeleted marks a torn-down project deleted.
func (a *Projects) MarkDeleted(ctx context.Context, in workflows.StepInput) error {
	return a.Store.MarkProjectDeleted(ctx, in.ProjectID)
}
