package projects

import (
	"context"
	"encoding/json"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Progress is the setup's step table: from the database once the setup has finished (or
// stopped at a failed step), from the running workflow otherwise, asked at most once per
// progressMaxAge per project however many tabs watch it. nil when nobody can answer now.
func (s *Service) Progress(ctx context.Context, p *store.Project) *workflows.Progress {
	if p.WorkflowID == "" {
		return nil
	}
	switch p.Status {
	case status.Ready, status.SetupFailed, status.Cancelled, status.Deleting, status.Deleted:
		if p.SetupProgress != "" {
			var pr workflows.Progress
			if err := json.Unmarshal([]byte(p.SetupProgress), &pr); err == nil {
				return &pr
			}
		}
		if p.Status == status.Ready { // finished before its table was recorded
			return workflows.CompletedProgress()
		}
	}
	return s.liveProgress(ctx, p.ID)
}

// progressMaxAge is how old a running setup's step table may be when a page or stream shows it.
const progressMaxAge = 500 * time.Millisecond

// liveProgress asks the running workflow, sharing one query per project among all callers. A
// failed query is kept as nil for progressMaxAge too: it is not asked again at once.
func (s *Service) liveProgress(ctx context.Context, projectID string) *workflows.Progress {
	s.init()
	pr, _ := s.progress.Get(context.WithoutCancel(ctx), projectID, otter.LoaderFunc[string, *workflows.Progress](
		func(ctx context.Context, id string) (*workflows.Progress, error) {
			pr, err := s.Setups.Progress(ctx, id)
			if err != nil {
				s.Log.Warn("progress query failed", "project_id", id, "error", err)
				return nil, nil
			}
			return pr, nil
		}))
	return pr
}

// EnsureRunning starts the project's workspace again in the background if it stopped, or finds
// where Docker restarted it; opening a project is the moment its owner wants it up. One ask at
// a time per project, and none within ensureEvery of the last answer, so a page reloaded over
// and over does not start a workflow each time.
func (s *Service) EnsureRunning(ctx context.Context, p *store.Project) {
	if p.Status != status.Ready {
		return
	}
	s.init()
	s.ensureMu.Lock()
	last, asked := s.ensuring[p.ID]
	if asked && (last.IsZero() || time.Since(last) < ensureEvery) {
		s.ensureMu.Unlock()
		return
	}
	s.ensuring[p.ID] = time.Time{} // under way
	s.ensureMu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		err := s.Setups.EnsureRunning(ctx, p)
		s.ensureMu.Lock()
		s.ensuring[p.ID] = time.Now()
		s.ensureMu.Unlock()
		if err != nil {
			s.Log.Warn("unable to ensure the workspace runs", "project_id", p.ID, "error", err)
			return
		}
		// The workspace answers where the database says now: whoever talks to it need not
		// wait out a backoff to find it (a container Docker restarted is on new ports).
		if s.OnRunning != nil {
			s.OnRunning(p.ID)
		}
	}()
}

// ensureEvery is how soon after an ask ends EnsureRunning may ask again for the same project.
const ensureEvery = 2 * time.Second

// RecordActivity tells the ready project's idle watch that someone has it open, in the
// background: the caller does not wait for Temporal. setups.Service signals at most once a
// minute per project, so a page under load costs a map lookup.
func (s *Service) RecordActivity(ctx context.Context, p *store.Project) {
	if p.Status != status.Ready {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		if err := s.Setups.RecordActivity(ctx, p); err != nil {
			s.Log.Warn("unable to record workspace activity", "project_id", p.ID, "error", err)
		}
	}()
}
