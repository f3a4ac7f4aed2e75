package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activity types of the workspace pool.
const (
	ActPoolPlan   = "pool.plan"
	ActPoolCreate = "pool.create"
	ActPoolRemove = "pool.remove"
)

// Signals WorkspacePool takes. `doce pool drain|refill` and the worker's start send them.
const (
	SignalPoolConfigure = "configure" // PoolConfig: size, image, age; sent by every worker at start
	SignalPoolDrain     = "drain"     // remove every unclaimed workspace and keep the pool empty
	SignalPoolRefill    = "refill"    // undo a drain and reconcile now
	SignalPoolWake      = "wake"      // a workspace was claimed: replace it now, not next round
)

// PoolWorkflowID is the pool's one reconciler per task queue: each host's queue has its own
// pool (runs recorded before hosts had one for the shared queue).
func PoolWorkflowID(taskQueue string) string { return "workspace-pool:" + taskQueue }

// PoolConfig is what the pool keeps: Size started, healthy, unclaimed workspaces on Image, none
// older than MaxAge.
type PoolConfig struct {
	Size   int
	Image  string
	MaxAge time.Duration
	// Every is how often the pool is checked when nothing happens.
	Every time.Duration
}

// PoolState carries the reconciler across continue-as-new.
type PoolState struct {
	Config  PoolConfig
	Drained bool
	// Host is the Docker host the pool keeps workspaces on, and TaskQueue its worker's queue,
	// where every pool step runs. Both empty in pools started before hosts: those ran on the
	// shared queue and keep the workspaces recorded without a host.
	Host      string `json:",omitempty"`
	TaskQueue string `json:",omitempty"`
}

// PoolPlanInput asks what to do to reach the target.
type PoolPlanInput struct {
	Size   int // 0 when drained
	Image  string
	MaxAge time.Duration
	Host   string `json:",omitempty"`
}

// PoolPlan is what the plan found: workspaces to remove (failed, unhealthy, on an old image or
// configuration, too old, or left over from a crash), the ids of those to start, and the
// OpenCode configuration to start them on.
type PoolPlan struct {
	Remove []string
	Create []string
	Config []byte
}

// PoolCreateInput starts one pooled workspace under ID (the id its project will have) on
// Config (none: the base configuration).
type PoolCreateInput struct {
	ID     string
	Image  string
	Config []byte
	Host   string `json:",omitempty"`
}

// poolPlanOpts: Docker or the database being away pauses the pool; it catches up after.
var poolPlanOpts = workflow.ActivityOptions{
	StartToCloseTimeout: time.Minute,
	HeartbeatTimeout:    20 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
}

// poolCreateOpts: starting OpenCode takes 3–6 s alone and ~30 s with ten at once; a workspace
// that does not come up is removed and replaced by the next round, not retried forever.
var poolCreateOpts = workflow.ActivityOptions{
	StartToCloseTimeout: 3 * time.Minute,
	HeartbeatTimeout:    15 * time.Second,
	RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumAttempts: 3},
}

// poolRemoveOpts: a removal must eventually happen, whatever Docker does meanwhile.
var poolRemoveOpts = composeDownOpts

// poolRoundsPerRun bounds a run's history; then it continues as new.
const poolRoundsPerRun = 100

// WorkspacePool keeps a pool of prebuilt workspaces at its configured size, so a new project
// claims one (store.CreateProject) instead of waiting for OpenCode to start. Each round it plans
// (what is there, what is healthy), removes what must go, starts what is missing, then waits for
// the next round or a signal.
func WorkspacePool(ctx workflow.Context, st PoolState) error {
	configure := workflow.GetSignalChannel(ctx, SignalPoolConfigure)
	drain := workflow.GetSignalChannel(ctx, SignalPoolDrain)
	refill := workflow.GetSignalChannel(ctx, SignalPoolRefill)
	wake := workflow.GetSignalChannel(ctx, SignalPoolWake)
	if err := workflow.SetQueryHandler(ctx, "state", func() (PoolState, error) { return st, nil }); err != nil {
		return err
	}
	for round := 0; round < poolRoundsPerRun; round++ {
		if err := poolRound(ctx, st); err != nil {
			return err
		}
		every := st.Config.Every
		if every <= 0 {
			every = 30 * time.Second
		}
		timerCtx, stopTimer := workflow.WithCancel(ctx)
		workflow.NewSelector(ctx).
			AddReceive(configure, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, &st.Config) }).
			AddReceive(drain, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Drained = true }).
			AddReceive(refill, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil); st.Drained = false }).
			AddReceive(wake, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, nil) }).
			AddFuture(workflow.NewTimer(timerCtx, every), func(workflow.Future) {}).
			Select(ctx)
		stopTimer()
	}
	// Signals that arrived after the last round are not lost across continue-as-new.
	for {
		var cfg PoolConfig
		switch {
		case configure.ReceiveAsync(&cfg):
			st.Config = cfg
		case drain.ReceiveAsync(nil):
			st.Drained = true
		case refill.ReceiveAsync(nil):
			st.Drained = false
		case wake.ReceiveAsync(nil):
		default:
			return workflow.NewContinueAsNewError(ctx, WorkspacePool, st)
		}
	}
}

func poolRound(ctx workflow.Context, st PoolState) error {
	size := st.Config.Size
	if st.Drained {
		size = 0
	}
	var plan PoolPlan
	in := PoolPlanInput{Size: size, Image: st.Config.Image, MaxAge: st.Config.MaxAge, Host: st.Host}
	if err := workflow.ExecuteActivity(onQueue(ctx, poolPlanOpts, st.TaskQueue), ActPoolPlan, in).Get(ctx, &plan); err != nil {
		return err
	}
	var futures []workflow.Future
	for _, id := range plan.Remove {
		futures = append(futures, workflow.ExecuteActivity(onQueue(ctx, poolRemoveOpts, st.TaskQueue), ActPoolRemove, id))
	}
	for _, id := range plan.Create {
		futures = append(futures, workflow.ExecuteActivity(onQueue(ctx, poolCreateOpts, st.TaskQueue), ActPoolCreate,
			PoolCreateInput{ID: id, Image: st.Config.Image, Config: plan.Config, Host: st.Host}))
	}
	for _, f := range futures {
		// A workspace that did not come up is marked failed by its activity and removed by
		// the next plan; one failure must not stop the pool.
		if err := f.Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Warn("pool step failed", "error", err)
		}
	}
	return nil
}
