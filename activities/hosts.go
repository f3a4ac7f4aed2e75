package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
)

// Hosts places projects on Docker hosts and says where they are. These are database reads and
// writes, run on the shared queue by whichever worker runs the workflow.
type Hosts struct {
	Store *store.Store
}

// Place puts the project on the least loaded host with room (store.PlaceProject), or finds the
// host it is on.
func (a *Hosts) Place(ctx context.Context, in workflows.StepInput) (workflows.HostQueue, error) {
	h, err := a.Store.PlaceProject(ctx, in.ProjectID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return workflows.HostQueue{}, temporal.NewNonRetryableApplicationError("The project was deleted.", workflows.ErrTypeProjectGone, nil)
	case errors.Is(err, store.ErrNoHost):
		// Which host is drained, full or away is for operators (doce hosts list), not the
		// project's owner.
		activity.GetLogger(ctx).Warn("no host for a new workspace", "project_id", in.ProjectID, "error", err)
		return workflows.HostQueue{}, temporal.NewApplicationError(
			"No Docker host can take the workspace now: each is full, drained or unreachable. An administrator can make room (doce hosts), then retry.",
			workflows.ErrTypeNoHost)
	case err != nil:
		return workflows.HostQueue{}, err
	}
	activity.GetLogger(ctx).Info("project placed", "project_id", in.ProjectID, "host", h.Name)
	return workflows.HostQueue{Host: h.Name, TaskQueue: h.TaskQueue}, nil
}

// ProjectHost is the host the project is on; empty when it has none (not placed, or made before
// hosts and not adopted) or is gone.
func (a *Hosts) ProjectHost(ctx context.Context, in workflows.StepInput) (workflows.HostQueue, error) {
	hqs, err := a.ProjectHosts(ctx, []string{in.ProjectID})
	if err != nil {
		return workflows.HostQueue{}, err
	}
	return hqs[0], nil
}

// ProjectHosts is ProjectHost for many projects, in their order.
func (a *Hosts) ProjectHosts(ctx context.Context, ids []string) ([]workflows.HostQueue, error) {
	names, err := a.Store.ProjectHosts(ctx, ids)
	if err != nil {
		return nil, err
	}
	queues := map[string]string{}
	out := make([]workflows.HostQueue, len(ids))
	for i, id := range ids {
		name := names[id]
		if name == "" {
			continue
		}
		q, ok := queues[name]
		if !ok {
			h, err := a.Store.HostByName(ctx, name)
			if err != nil {
				// Placed on a host whose row is gone: nothing serves it, and the shared queue
				// would run its steps on some other engine. Retried until it registers again.
				return nil, errors.Join(errors.New("the project's host "+name+" is not registered"), err)
			}
			q = h.TaskQueue
			queues[name] = q
		}
		out[i] = workflows.HostQueue{Host: name, TaskQueue: q}
	}
	return out, nil
}

// onThisHost refuses a step run as a local activity by a worker that does not serve the
// project's host (host is the one it serves): the workflow then runs the step on the host's
// queue. A regular activity came through its host's queue already, and a project without a host
// (made before hosts) is any worker's, as it was then.
func onThisHost(ctx context.Context, host string, p *store.Project) error {
	if p == nil || p.Host == "" || p.Host == host || !activity.GetInfo(ctx).IsLocalActivity {
		return nil
	}
	return temporal.NewNonRetryableApplicationError("the workspace is on host "+p.Host+", not this worker's ("+host+")",
		workflows.ErrTypeNotThisHost, nil)
}
