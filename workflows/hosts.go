package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Workspaces run on many Docker hosts. Each host's worker takes the Docker and OpenCode
// activities of the projects placed on it from the host's own task queue; the workflows, and
// the activities that only touch the database or Temporal, stay on the shared queue. A project
// is placed once, by its setup (hosts.place), and every later step for it runs on its host's
// queue. The short steps that run as local activities (no task round trip through the server)
// still do when the worker running the workflow serves the project's host, as the only worker
// of a single host always does: run elsewhere, such a step refuses (ErrTypeNotThisHost) and the
// workflow runs it on the host's queue.
//
// Runs recorded before hosts ran every step on the shared queue (and three setup steps, the
// idle check and the container check as local activities); changeHosts keeps them replaying.

// changeHosts is the workflow.GetVersion change id of routing steps to the project's host.
const changeHosts = "docker-hosts"

// Activity types of placement: database reads on the shared queue.
const (
	ActPlaceProject = "hosts.place"        // put a new project on a host with room; a placed one stays
	ActProjectHost  = "hosts.projectHost"  // the host a project is on
	ActProjectHosts = "hosts.projectHosts" // the hosts of many projects
)

// ErrTypeNoHost means no host can take a new workspace now (each is drained, full or
// unreachable); an operator adds room, then retries.
const ErrTypeNoHost = "NoHostWithRoom"

// ErrTypeNotThisHost is a local activity's refusal to run a step for a project on a host its
// worker does not serve.
const ErrTypeNotThisHost = "NotThisHost"

// HostTaskQueue is the task queue of host's worker, next to the shared queue.
func HostTaskQueue(sharedQueue, host string) string { return sharedQueue + "-host-" + host }

// HostQueue names the host a project is on and its worker's task queue. Both are empty for a
// project not placed, or made before hosts and not adopted: its steps run on the workflow's own
// queue, as they did then.
type HostQueue struct {
	Host      string
	TaskQueue string
}

// placeOpts: a host that is briefly unreachable (its worker restarting) or a burst that filled
// every host is waited out for about a minute before the setup stops for an operator.
var placeOpts = workflow.LocalActivityOptions{
	StartToCloseTimeout: 15 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 15 * time.Second, MaximumAttempts: 7,
		NonRetryableErrorTypes: []string{ErrTypeProjectGone},
	},
}

// hostLookupOpts: reading where a project is cannot fail for long; retried until the database
// answers.
var hostLookupOpts = recordOpts

// routed reports whether this run routes steps to hosts: every run started since, not the ones
// recorded before.
func routed(ctx workflow.Context) bool {
	return workflow.GetVersion(ctx, changeHosts, workflow.DefaultVersion, 1) >= 1
}

// placeProject puts the project on a host (or finds the one it is on) and returns its queue.
func placeProject(ctx workflow.Context, projectID string) (HostQueue, error) {
	var hq HostQueue
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, placeOpts), ActPlaceProject, StepInput{ProjectID: projectID}).Get(ctx, &hq)
	return hq, err
}

// projectQueue is the task queue of the host the project is on, "" when none (the workflow's
// own), for runs that route; always "" for runs recorded before.
func projectQueue(ctx workflow.Context, projectID string) (string, error) {
	if !routed(ctx) {
		return "", nil
	}
	var hq HostQueue
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, hostLookupOpts), ActProjectHost, StepInput{ProjectID: projectID}).Get(ctx, &hq)
	return hq.TaskQueue, err
}

// projectQueues is projectQueue for many projects, in their order.
func projectQueues(ctx workflow.Context, projectIDs []string) ([]string, error) {
	queues := make([]string, len(projectIDs))
	if len(projectIDs) == 0 || !routed(ctx) {
		return queues, nil
	}
	var hqs []HostQueue
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, hostLookupOpts), ActProjectHosts, projectIDs).Get(ctx, &hqs); err != nil {
		return nil, err
	}
	for i := range queues {
		if i < len(hqs) {
			queues[i] = hqs[i].TaskQueue
		}
	}
	return queues, nil
}

// onQueue sets the task queue of the activities run with the returned context: the project's
// host's, or the workflow's own when queue is empty.
func onQueue(ctx workflow.Context, opts workflow.ActivityOptions, queue string) workflow.Context {
	opts.TaskQueue = queue
	return workflow.WithActivityOptions(ctx, opts)
}

// hostStepOpts runs a short step as a regular activity on the host's queue, under its local
// options' timeouts and policy: it talks to the project's workspace, which only its host
// reaches. The heartbeat notices a host's worker gone within seconds, so the step waits for it
// to return instead of for its whole timeout.
func hostStepOpts(l workflow.LocalActivityOptions) workflow.ActivityOptions {
	return workflow.ActivityOptions{
		StartToCloseTimeout:    l.StartToCloseTimeout,
		ScheduleToCloseTimeout: l.ScheduleToCloseTimeout,
		HeartbeatTimeout:       15 * time.Second,
		RetryPolicy:            l.RetryPolicy,
		Summary:                l.Summary,
	}
}

// localOnHost runs a short step of the project on host queue: as a local activity when the
// worker running the workflow serves that host, else (the local attempt refused at once) as a
// regular activity on the queue. Which one ran is in the history, so a replay takes the same
// way. An empty queue (runs recorded before hosts, projects made before them) runs it locally,
// as then.
func localOnHost(ctx workflow.Context, name string, l workflow.LocalActivityOptions, queue string, in, out any) error {
	if queue == "" {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, l), name, in).Get(ctx, out)
	}
	local := l
	if l.RetryPolicy != nil {
		p := *l.RetryPolicy
		p.NonRetryableErrorTypes = append(append([]string{}, p.NonRetryableErrorTypes...), ErrTypeNotThisHost)
		local.RetryPolicy = &p
	} else {
		local.RetryPolicy = &temporal.RetryPolicy{NonRetryableErrorTypes: []string{ErrTypeNotThisHost}}
	}
	err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, local), name, in).Get(ctx, out)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != ErrTypeNotThisHost {
		return err
	}
	return workflow.ExecuteActivity(onQueue(ctx, hostStepOpts(l), queue), name, in).Get(ctx, out)
}
