package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/doce-dev/doce/status"
)

// Host is a Docker host a worker serves: its engine runs the workspaces of the projects placed
// on it, and its own task queue carries their Docker and OpenCode activities.
type Host struct {
	bun.BaseModel `bun:"table:hosts"`

	Name                 string     `bun:"name,pk" json:"name"`
	TaskQueue            string     `bun:"task_queue" json:"taskQueue"`
	DockerHost           string     `bun:"docker_host" json:"dockerHost"` // the worker's DOCKER_HOST; empty: the default socket
	Address              string     `bun:"address" json:"address"`        // where workspace ports are published and reached
	MaxWorkspaces        int        `bun:"max_workspaces" json:"maxWorkspaces"`
	MemoryBytes          int64      `bun:"memory_bytes" json:"memoryBytes"`
	WorkspaceMemoryBytes int64      `bun:"workspace_memory_bytes" json:"workspaceMemoryBytes"`
	Drained              bool       `bun:"drained" json:"drained"`
	HeartbeatSeconds     int        `bun:"heartbeat_seconds" json:"heartbeatSeconds"`
	CreatedAt            time.Time  `bun:"created_at" json:"createdAt"`
	StartedAt            time.Time  `bun:"started_at" json:"startedAt"`
	HeartbeatAt          time.Time  `bun:"heartbeat_at" json:"heartbeatAt"`
	StoppedAt            *time.Time `bun:"stopped_at" json:"stoppedAt,omitempty"`
}

// missedBeats is how many heartbeats a host may miss before it counts as unreachable: one late
// write is a busy database, three is a worker gone.
const missedBeats = 3

// Reachable reports whether the host's worker was beating at now: it did not say it stopped,
// and its last heartbeat is at most three intervals old.
func (h *Host) Reachable(now time.Time) bool {
	every := time.Duration(max(h.HeartbeatSeconds, 1)) * time.Second
	return h.StoppedAt == nil && now.Sub(h.HeartbeatAt) <= missedBeats*every
}

// Capacity is how many workspaces the host holds: the smaller of its workspace limit and its
// memory over each workspace's memory limit; 0 means no limit.
func (h *Host) Capacity() int {
	n := h.MaxWorkspaces
	if h.MemoryBytes > 0 && h.WorkspaceMemoryBytes > 0 {
		byMemory := max(int(h.MemoryBytes/h.WorkspaceMemoryBytes), 0)
		if n == 0 || byMemory < n {
			n = byMemory
			if n == 0 {
				n = -1 // room for none: less memory than one workspace's limit
			}
		}
	}
	return n
}

// Host states, as lists and project pages show them.
const (
	HostReady       = "ready"
	HostDrained     = "drained"     // takes no new projects; its own keep working
	HostUnreachable = "unreachable" // its worker stopped beating
)

// HostLoad is a host with what it holds now: its projects' workspaces and its pooled ones.
// Every live project counts, stopped ones too: they start again when used.
type HostLoad struct {
	Host
	Projects int `json:"projects"`
	Pooled   int `json:"pooled"`
}

// Used is how many workspaces the host holds.
func (l *HostLoad) Used() int { return l.Projects + l.Pooled }

// State is the host's state at now: unreachable wins over drained.
func (l *HostLoad) State(now time.Time) string {
	switch {
	case !l.Reachable(now):
		return HostUnreachable
	case l.Drained:
		return HostDrained
	}
	return HostReady
}

// Room is how many more workspaces the host takes; -1 means no limit.
func (l *HostLoad) Room() int {
	c := l.Capacity()
	switch {
	case c == 0:
		return -1
	case c < 0:
		return 0
	}
	return max(c-l.Used(), 0)
}

// share is how full the host is, 0 for a host without a limit.
func (l *HostLoad) share() float64 {
	c := l.Capacity()
	switch {
	case c == 0:
		return 0
	case c < 0:
		return 1
	}
	return float64(l.Used()) / float64(c)
}

// ErrNoHost means no host can take a new workspace: none is registered, or each is drained,
// full or unreachable. Its message says which.
var ErrNoHost = errors.New("no Docker host can take a new workspace")

// PickHost chooses where a new workspace goes: among the hosts that are reachable, not drained
// and have room, the least loaded — the smallest share of its capacity in use (a host without a
// limit counts as empty), then the fewest workspaces, then by name, so equal hosts take turns.
func PickHost(hosts []HostLoad, now time.Time) (*HostLoad, error) {
	var best *HostLoad
	var why []string
	for i := range hosts {
		h := &hosts[i]
		switch {
		case !h.Reachable(now):
			why = append(why, fmt.Sprintf("%s is unreachable (last heard of %s ago)", h.Name, now.Sub(h.HeartbeatAt).Round(time.Second)))
			continue
		case h.Drained:
			why = append(why, h.Name+" is drained")
			continue
		case h.Room() == 0:
			why = append(why, fmt.Sprintf("%s is full (%d of %d workspaces)", h.Name, h.Used(), max(h.Capacity(), 0)))
			continue
		}
		if best == nil || less(h, best) {
			best = h
		}
	}
	if best != nil {
		return best, nil
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: none is registered; start a worker (doce worker) for one", ErrNoHost)
	}
	return nil, fmt.Errorf("%w: %s", ErrNoHost, strings.Join(why, "; "))
}

func less(a, b *HostLoad) bool {
	if sa, sb := a.share(), b.share(); sa != sb {
		return sa < sb
	}
	if a.Used() != b.Used() {
		return a.Used() < b.Used()
	}
	return a.Name < b.Name
}

// holdsWorkspace is every project status whose workspace counts against its host: all live
// ones but cancelled (its workspace was removed), and deleting (until its teardown is done).
var holdsWorkspace = slices.DeleteFunc(append(append([]status.Project{}, status.Live...), status.Deleting),
	func(s status.Project) bool { return s == status.Cancelled })

// RegisterHost records the host a worker starts serving, or updates it: its queue, engine,
// address and capacity as this worker says, beating from now. Whether it is drained is the
// operator's and stays as it was.
func (s *Store) RegisterHost(ctx context.Context, h *Host) error {
	now := time.Now().UTC()
	h.CreatedAt, h.StartedAt, h.HeartbeatAt, h.StoppedAt = now, now, now, nil
	_, err := s.DB.NewInsert().Model(h).
		On("CONFLICT (name) DO UPDATE").
		Set("task_queue = EXCLUDED.task_queue").
		Set("docker_host = EXCLUDED.docker_host").
		Set("address = EXCLUDED.address").
		Set("max_workspaces = EXCLUDED.max_workspaces").
		Set("memory_bytes = EXCLUDED.memory_bytes").
		Set("workspace_memory_bytes = EXCLUDED.workspace_memory_bytes").
		Set("heartbeat_seconds = EXCLUDED.heartbeat_seconds").
		Set("started_at = EXCLUDED.started_at").
		Set("heartbeat_at = EXCLUDED.heartbeat_at").
		Set("stopped_at = NULL").
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to register host %s: %w", h.Name, err)
	}
	return nil
}

// HostHeartbeat records that the host's worker and engine answer now.
func (s *Store) HostHeartbeat(ctx context.Context, name string) error {
	res, err := s.DB.NewUpdate().Model((*Host)(nil)).
		Set("heartbeat_at = ?", time.Now().UTC()).Set("stopped_at = NULL").
		Where("name = ?", name).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to record the heartbeat of host %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// HostStopped records that the host's worker stopped, so it counts as unreachable at once
// rather than after its missed beats. Another worker serving the same host clears it with its
// next beat.
func (s *Store) HostStopped(ctx context.Context, name string) error {
	_, err := s.DB.NewUpdate().Model((*Host)(nil)).Set("stopped_at = ?", time.Now().UTC()).Where("name = ?", name).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to record host %s stopped: %w", name, err)
	}
	return nil
}

// SetHostDrained drains the host (it takes no new projects) or undrains it.
func (s *Store) SetHostDrained(ctx context.Context, name string, drained bool) error {
	res, err := s.DB.NewUpdate().Model((*Host)(nil)).Set("drained = ?", drained).Where("name = ?", name).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to drain host %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// HostByName returns one host.
func (s *Store) HostByName(ctx context.Context, name string) (*Host, error) {
	h := new(Host)
	if err := s.DB.NewSelect().Model(h).Where("name = ?", name).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return h, nil
}

// Hosts lists every host with its load, by name.
func (s *Store) Hosts(ctx context.Context) ([]HostLoad, error) {
	return hostLoads(ctx, s.DB)
}

func hostLoads(ctx context.Context, db bun.IDB) ([]HostLoad, error) {
	var hosts []Host
	if err := db.NewSelect().Model(&hosts).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list hosts: %w", err)
	}
	type count struct {
		Host string `bun:"host"`
		N    int    `bun:"n"`
	}
	var projects, pooled []count
	err := db.NewSelect().Model((*Project)(nil)).Column("host").ColumnExpr("count(*) AS n").
		Where("host <> ''").Where("deleted_at IS NULL").Where("status IN (?)", bun.List(holdsWorkspace)).
		Group("host").Scan(ctx, &projects)
	if err != nil {
		return nil, fmt.Errorf("store: unable to count projects by host: %w", err)
	}
	err = db.NewSelect().Model((*PoolWorkspace)(nil)).Column("host").ColumnExpr("count(*) AS n").
		Where("host <> ''").Group("host").Scan(ctx, &pooled)
	if err != nil {
		return nil, fmt.Errorf("store: unable to count pooled workspaces by host: %w", err)
	}
	loads := make([]HostLoad, len(hosts))
	at := map[string]*HostLoad{}
	for i, h := range hosts {
		loads[i] = HostLoad{Host: h}
		at[h.Name] = &loads[i]
	}
	for _, c := range projects {
		if l := at[c.Host]; l != nil {
			l.Projects = c.N
		}
	}
	for _, c := range pooled {
		if l := at[c.Host]; l != nil {
			l.Pooled = c.N
		}
	}
	return loads, nil
}

// PlaceProject puts the project on a host (PickHost) and returns that host. A project placed
// before (or that claimed a pooled workspace) stays where it is, whatever that host's state:
// its workspace is there. ErrNotFound when the project is gone; ErrNoHost when no host can take
// it.
func (s *Store) PlaceProject(ctx context.Context, projectID string) (*Host, error) {
	var placed *Host
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		// One placement at a time, so two at once never both count a host's last place.
		if err := s.serializeWrites(ctx, tx, "hosts"); err != nil {
			return err
		}
		p := new(Project)
		if err := tx.NewSelect().Model(p).Column("host", "deleted_at").Where("id = ?", projectID).Scan(ctx); err != nil {
			return notFound(err)
		}
		if p.DeletedAt != nil {
			return ErrNotFound
		}
		loads, err := hostLoads(ctx, tx)
		if err != nil {
			return err
		}
		if p.Host != "" {
			for i := range loads {
				if loads[i].Name == p.Host {
					placed = &loads[i].Host
					return nil
				}
			}
			return fmt.Errorf("store: project %s is on host %s, which is not registered", projectID, p.Host)
		}
		best, err := PickHost(loads, time.Now().UTC())
		if err != nil {
			return err
		}
		_, err = tx.NewUpdate().Model((*Project)(nil)).Set("host = ?", best.Name).Set("updated_at = ?", time.Now().UTC()).
			Where("id = ?", projectID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to place project %s: %w", projectID, err)
		}
		placed = &best.Host
		return nil
	})
	if err != nil {
		return nil, err
	}
	return placed, nil
}

// ProjectHosts returns the host of each project in ids: a host's name, or "" for a project not
// placed (or gone).
func (s *Store) ProjectHosts(ctx context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct {
		ID   string `bun:"id"`
		Host string `bun:"host"`
	}
	if err := s.DB.NewSelect().Model((*Project)(nil)).Column("id", "host").Where("id IN (?)", bun.List(ids)).Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("store: unable to find the hosts of projects: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Host
	}
	return out, nil
}

// AdoptHostless gives the projects made before hosts existed that have a workspace to host
// name, when it is the only host registered: until hosts, every worker drove the one engine,
// which is where their workspaces are. With more hosts it does nothing (it could not tell
// which holds them). It returns how many it adopted.
func (s *Store) AdoptHostless(ctx context.Context, name string) (int, error) {
	var n int64
	err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.serializeWrites(ctx, tx, "hosts"); err != nil { // two first hosts at once
			return err
		}
		var names []string
		if err := tx.NewSelect().Model((*Host)(nil)).Column("name").Scan(ctx, &names); err != nil {
			return fmt.Errorf("store: unable to list hosts: %w", err)
		}
		if len(names) != 1 || names[0] != name {
			return nil
		}
		res, err := tx.NewUpdate().Model((*Project)(nil)).Set("host = ?", name).
			Where("host = ''").Where("container_id <> ''").Where("deleted_at IS NULL").Exec(ctx)
		if err != nil {
			return fmt.Errorf("store: unable to adopt projects: %w", err)
		}
		n, _ = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// claimableHosts names the hosts a new project can go on now: reachable and not drained. (A
// host that is full still hands over a pooled workspace: the workspace counted already.)
func claimableHosts(ctx context.Context, db bun.IDB) ([]string, error) {
	var hosts []Host
	if err := db.NewSelect().Model(&hosts).Where("drained = ?", false).Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list hosts: %w", err)
	}
	now := time.Now().UTC()
	var names []string
	for _, h := range hosts {
		if h.Reachable(now) {
			names = append(names, h.Name)
		}
	}
	return names, nil
}
