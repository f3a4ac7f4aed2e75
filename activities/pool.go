package activities

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"golang.org/x/sync/errgroup"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// Pool starts, checks and removes prebuilt workspaces. They are made like a project's (Docker's
// settings) and reached like one (OpenCode's), but hold no credential and no user data until a
// project claims one.
type Pool struct {
	Docker   *Docker
	OpenCode *OpenCode
}

// Plan looks at every pooled workspace of the pool's host and says which to remove and how
// many to start, and on which configuration. A free one is removed when it runs another image
// than in.Image, is older than in.MaxAge, was started on a configuration new projects no longer
// need, or does not answer its health check; a starting or failed one is always removed, since
// no start is in flight while the pool plans. A drained host keeps no pool, and a host starts
// no more than it has room for.
//
// New workspaces start on the configuration of the latest project: the next project is most
// likely its owner's again, with the same provider and model, and then it is ready as soon as
// its first prompt is accepted. A workspace on the base configuration serves any project,
// after a reload.
func (a *Pool) Plan(ctx context.Context, in workflows.PoolPlanInput) (workflows.PoolPlan, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	st := a.Docker.Store
	room := -1 // no limit
	if in.Host != "" {
		h, err := a.host(ctx, in.Host)
		if err != nil {
			return workflows.PoolPlan{}, err
		}
		if h.Drained {
			in.Size = 0
		}
		room = h.Room()
	}
	all, err := st.PoolWorkspaces(ctx)
	if err != nil {
		return workflows.PoolPlan{}, err
	}
	config, err := a.nextConfig(ctx)
	if err != nil {
		return workflows.PoolPlan{}, err
	}
	// The pool's own: its host's (pools from before hosts keep the ones recorded without one).
	rows := slices.DeleteFunc(slices.Clone(all), func(w store.PoolWorkspace) bool { return w.Host != in.Host })
	var (
		mu   sync.Mutex
		plan = workflows.PoolPlan{Config: config}
		keep int
	)
	claimable := []string{agent.ConfigSum(config), agent.ConfigSum(agent.BaseConfig(a.Docker.Ask))}
	remove := func(id string) { mu.Lock(); plan.Remove = append(plan.Remove, id); mu.Unlock() }
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range rows {
		switch {
		case w.Status != store.PoolFree, w.Image != in.Image, !slices.Contains(claimable, w.ConfigSum),
			in.MaxAge > 0 && time.Since(w.CreatedAt) > in.MaxAge:
			remove(w.ID)
		default:
			g.Go(func() error {
				if err := a.healthy(gctx, &w); err != nil {
					activity.GetLogger(ctx).Warn("pooled workspace unhealthy; replacing it", "pool_id", w.ID, "error", err)
					remove(w.ID)
					return nil
				}
				mu.Lock()
				keep++
				mu.Unlock()
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return workflows.PoolPlan{}, err
	}
	// Workspaces the pool made whose row is gone and that no project claimed: left over by a
	// removal that stopped between the row and Docker. Any host's row counts as known: a pool
	// from before hosts may share its engine with a host's. Only this pool's own are looked
	// at: another doce on the same engine keeps its rows in another database.
	known := map[string]bool{}
	for _, w := range all {
		known[w.ID] = true
	}
	ids, err := a.Docker.Workspace.PooledIDs(ctx, poolOwner(ctx))
	if err != nil {
		return workflows.PoolPlan{}, err
	}
	for _, id := range ids {
		if known[id] {
			continue
		}
		if _, err := st.Project(ctx, id); errors.Is(err, store.ErrNotFound) {
			remove(id)
		} else if err != nil {
			return workflows.PoolPlan{}, err
		}
	}
	// Too many free ones (the size went down): remove the oldest beyond the size.
	for _, w := range rows {
		if keep <= in.Size {
			break
		}
		if w.Status == store.PoolFree && w.Image == in.Image && !slices.Contains(plan.Remove, w.ID) {
			remove(w.ID)
			keep--
		}
	}
	want := in.Size - keep
	if room >= 0 {
		// What is removed frees its place; what is kept holds one already.
		freed := 0
		for _, w := range rows {
			if slices.Contains(plan.Remove, w.ID) {
				freed++
			}
		}
		want = min(want, room+freed)
	}
	for range want {
		plan.Create = append(plan.Create, store.NewID())
	}
	return plan, nil
}

// nextConfig is the configuration the latest project's OpenCode runs on, or the base one when
// there is no project or its connection is gone.
func (a *Pool) nextConfig(ctx context.Context) ([]byte, error) {
	st := a.Docker.Store
	p, err := st.LatestProject(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return agent.BaseConfig(a.Docker.Ask), nil
	} else if err != nil {
		return nil, err
	}
	conn, err := st.Connection(ctx, p.OwnerUserID, p.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return agent.BaseConfig(a.Docker.Ask), nil
	} else if err != nil {
		return nil, err
	}
	return agent.Config(p, conn, a.Docker.Ask, a.Docker.GatewayURL)
}

// poolOwner names the pool whose step this is: its task queue, where all its steps run, and
// which no other pool on the engine shares.
func poolOwner(ctx context.Context) string { return activity.GetInfo(ctx).TaskQueue }

// host is the pool's host with what it holds.
func (a *Pool) host(ctx context.Context, name string) (*store.HostLoad, error) {
	hosts, err := a.Docker.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	for i := range hosts {
		if hosts[i].Name == name {
			return &hosts[i], nil
		}
	}
	return nil, fmt.Errorf("pool: host %s is not registered", name)
}

// healthy checks a free workspace's container runs and OpenCode answers.
func (a *Pool) healthy(ctx context.Context, w *store.PoolWorkspace) error {
	ws, err := a.Docker.Workspace.Inspect(ctx, w.ID)
	if err != nil {
		return err
	}
	if !ws.Running {
		return errors.New("its container is not running")
	}
	if ws.HostPort != w.HostPort {
		return fmt.Errorf("its OpenCode exited (%s)", ws)
	}
	c, err := a.client(ctx, w.ID, w.HostPort, w.ServerPasswordCiphertext)
	if err != nil {
		return err
	}
	h, err := c.Health(ctx, healthRequestTimeout)
	if err == nil && !h.Healthy {
		err = errors.New("OpenCode answers but is not healthy")
	}
	return err
}

func (a *Pool) client(ctx context.Context, id string, port int, ciphertext string) (*opencode.Client, error) {
	return a.OpenCode.Agent.Client(ctx, &store.Project{ID: id, HostPort: port, ServerPasswordCiphertext: ciphertext})
}

// Create starts one pooled workspace and offers it for claiming once OpenCode has loaded its
// configuration. A retry finds what an earlier attempt made; a workspace a project claimed
// meanwhile is left alone.
func (a *Pool) Create(ctx context.Context, in workflows.PoolCreateInput) error {
	d := a.Docker
	if in.Config == nil {
		in.Config = agent.BaseConfig(d.Ask)
	}
	err := d.Store.AddPoolWorkspace(ctx, in.ID, in.Image, agent.ConfigSum(in.Config), in.Host)
	if errors.Is(err, store.ErrConflict) {
		return nil // claimed by a project: it is the project's now
	} else if err != nil {
		return err
	}
	if err := a.create(ctx, in); err != nil {
		// The attempt's context may be what ended it: record the failure on one of its own.
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if mErr := d.Store.MarkPoolFailed(mctx, in.ID, err.Error()); mErr != nil {
			activity.GetLogger(ctx).Warn("unable to mark pooled workspace failed", "pool_id", in.ID, "error", mErr)
		}
		return err
	}
	return nil
}

func (a *Pool) create(ctx context.Context, in workflows.PoolCreateInput) error {
	d := a.Docker
	stop := heartbeatWhile(ctx)
	defer stop()
	keyCtx := secrets.ProjectContext(in.ID, fieldServerPassword)
	fresh, _, err := d.Secrets.Encrypt(ctx, []byte(base64.RawURLEncoding.EncodeToString(store.RandomToken(24))), keyCtx)
	if err != nil {
		return err
	}
	ct, err := d.Store.SetPoolPasswordOnce(ctx, in.ID, fresh)
	if err != nil {
		return err
	}
	pw, err := d.Secrets.Decrypt(ctx, ct, keyCtx)
	if err != nil {
		return err
	}
	ws, err := d.Workspace.Up(ctx, workspace.Spec{
		ProjectID: in.ID, Image: in.Image, Password: string(pw), MemoryBytes: d.Memory, NanoCPUs: d.NanoCPUs, PidsLimit: d.Pids, DNS: d.DNS, Env: d.Env,
		OpenCodeConfig: in.Config, Pooled: true, ConfigSum: agent.ConfigSum(in.Config), PoolOwner: poolOwner(ctx),
	})
	if err != nil {
		return err
	}
	c, err := a.client(ctx, in.ID, ws.HostPort, ct)
	if err != nil {
		return err
	}
	// Docker restarts an OpenCode that exited on new ports: poll where it is now.
	c, err = a.OpenCode.pollHealthy(ctx, c, func() (*opencode.Client, workspace.Container, error) {
		w, err := d.Workspace.Inspect(ctx, in.ID)
		if err != nil || !w.Running || w.HostPort == 0 || w.HostPort == ws.HostPort {
			return c, w, err
		}
		ws.HostPort = w.HostPort
		c, err = a.client(ctx, in.ID, ws.HostPort, ct)
		return c, w, err
	})
	if err != nil {
		return err
	}
	// The server answers; its instance (configuration, plugins, tools, file watcher) loads at
	// the first requests that need it: these, so the claiming project's first prompt need not
	// wait for them. Providers load at that prompt, after PUT /auth has handed over the key.
	if err := c.Preload(ctx); err != nil {
		return fmt.Errorf("load the OpenCode instance: %w", err)
	}
	err = d.Store.MarkPoolFree(ctx, in.ID, ws.ContainerID, ws.ContainerName, ws.HostPort)
	if errors.Is(err, store.ErrNotFound) {
		return nil // an earlier attempt offered it already, or the pool removed it meanwhile
	}
	return err
}

// Remove takes a workspace out of the pool and removes its Docker objects, unless a project
// claimed it first.
func (a *Pool) Remove(ctx context.Context, id string) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	removable, err := a.Docker.Store.DeletePoolWorkspace(ctx, id)
	if err != nil || !removable {
		return err
	}
	if err := a.Docker.Workspace.Down(ctx, id); err != nil {
		return fmt.Errorf("remove pooled workspace %s: %w", id, err)
	}
	return nil
}
