package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// Pool workspace statuses.
const (
	PoolStarting = "starting" // its container is being made and started
	PoolFree     = "free"     // healthy and waiting to be claimed
	PoolFailed   = "failed"   // did not come up or stopped answering; the reconciler removes it
)

// PoolWorkspace is a prebuilt workspace that no project owns yet. Its id is the id of the
// project that will claim it, so its Docker objects carry that project's names and labels from
// the start.
type PoolWorkspace struct {
	bun.BaseModel `bun:"table:pool_workspaces"`

	ID                       string `bun:"id,pk"`
	Image                    string `bun:"image"`
	Status                   string `bun:"status"`
	ContainerID              string `bun:"container_id"`
	ContainerName            string `bun:"container_name"`
	HostPort                 int    `bun:"host_port"`
	ServerPasswordCiphertext string `bun:"server_password_ciphertext"`
	Error                    string `bun:"error"`
	// ConfigSum names the configuration its OpenCode loaded (agent.ConfigSum).
	ConfigSum string     `bun:"config_sum"`
	CreatedAt time.Time  `bun:"created_at"`
	ReadyAt   *time.Time `bun:"ready_at"`
	Host      string     `bun:"host"` // the Docker host it runs on; empty: made before hosts
}

// PoolClaim says which prebuilt workspaces a new project may claim: those on Image started on
// one of Configs (configuration sums), the first preferred.
type PoolClaim struct {
	Image   string
	Configs []string
}

// AddPoolWorkspace records a workspace about to be started on host, on the configuration
// configSum. Adding an id that is recorded is a no-op, so a retried start records it once;
// adding one a project has claimed meanwhile is refused with ErrConflict, so a claimed
// workspace never goes back to the pool.
func (s *Store) AddPoolWorkspace(ctx context.Context, id, image, configSum, host string) error {
	_, err := s.DB.NewRaw(`INSERT INTO pool_workspaces (id, image, status, config_sum, created_at, host)
		SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM projects WHERE id = ?)
		ON CONFLICT (id) DO NOTHING`, id, image, PoolStarting, configSum, time.Now().UTC(), host, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to add pool workspace: %w", err)
	}
	if _, err := s.Project(ctx, id); err == nil {
		return ErrConflict
	} else if !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// PoolWorkspace returns one pooled workspace; ErrNotFound once it was claimed or removed.
func (s *Store) PoolWorkspace(ctx context.Context, id string) (*PoolWorkspace, error) {
	w := new(PoolWorkspace)
	if err := s.DB.NewSelect().Model(w).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return w, nil
}

// PoolWorkspaces lists every pooled workspace of every host, oldest first.
func (s *Store) PoolWorkspaces(ctx context.Context) ([]PoolWorkspace, error) {
	var ws []PoolWorkspace
	if err := s.DB.NewSelect().Model(&ws).Order("created_at").Scan(ctx); err != nil {
		return nil, fmt.Errorf("store: unable to list pool workspaces: %w", err)
	}
	return ws, nil
}

// SetPoolPasswordOnce stores the workspace's server password ciphertext unless one is stored,
// and returns the stored one (as SetProjectPasswordOnce does for projects).
func (s *Store) SetPoolPasswordOnce(ctx context.Context, id, ciphertext string) (string, error) {
	_, err := s.DB.NewUpdate().Model((*PoolWorkspace)(nil)).
		Set("server_password_ciphertext = ?", ciphertext).
		Where("id = ?", id).Where("server_password_ciphertext = ''").Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("store: unable to store pool workspace password: %w", err)
	}
	w, err := s.PoolWorkspace(ctx, id)
	if err != nil {
		return "", err
	}
	return w.ServerPasswordCiphertext, nil
}

// PoolPage returns up to limit prebuilt workspaces with ids after afterID, in id order (a key
// rewrap's page).
func (s *Store) PoolPage(ctx context.Context, afterID string, limit int) ([]PoolWorkspace, error) {
	var ws []PoolWorkspace
	err := s.DB.NewSelect().Model(&ws).Where("id > ?", afterID).Order("id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to page pool workspaces: %w", err)
	}
	return ws, nil
}

// SetPoolPassword replaces the workspace's server password ciphertext with the same password
// sealed anew (a key rewrap).
func (s *Store) SetPoolPassword(ctx context.Context, id, ciphertext string) error {
	_, err := s.DB.NewUpdate().Model((*PoolWorkspace)(nil)).
		Set("server_password_ciphertext = ?", ciphertext).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to store pool workspace password: %w", err)
	}
	return nil
}

// MarkPoolFree records where a started, healthy workspace listens and offers it for claiming.
func (s *Store) MarkPoolFree(ctx context.Context, id, containerID, containerName string, hostPort int) error {
	res, err := s.DB.NewUpdate().Model((*PoolWorkspace)(nil)).
		Set("status = ?", PoolFree).Set("container_id = ?", containerID).Set("container_name = ?", containerName).
		Set("host_port = ?", hostPort).Set("ready_at = ?", time.Now().UTC()).Set("error = ''").
		Where("id = ?", id).Where("status = ?", PoolStarting).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to mark pool workspace free: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// MarkPoolFailed takes a workspace out of claiming, with the reason for operators.
func (s *Store) MarkPoolFailed(ctx context.Context, id, reason string) error {
	_, err := s.DB.NewUpdate().Model((*PoolWorkspace)(nil)).
		Set("status = ?", PoolFailed).Set("error = ?", reason).Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to mark pool workspace failed: %w", err)
	}
	return nil
}

// DeletePoolWorkspace takes a workspace out of the pool for removal. It reports whether its
// Docker objects are the pool's to remove: false when a project claimed it.
func (s *Store) DeletePoolWorkspace(ctx context.Context, id string) (removable bool, err error) {
	if _, err := s.DB.NewDelete().Model((*PoolWorkspace)(nil)).Where("id = ?", id).Exec(ctx); err != nil {
		return false, fmt.Errorf("store: unable to delete pool workspace: %w", err)
	}
	// Once the row is gone nobody can claim it, so this answer stays true.
	if _, err := s.Project(ctx, id); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, nil
}

// claimPoolWorkspace takes the free workspace c allows on a host that takes new projects
// (claimableHosts) inside tx, on c's first configuration if one is, the oldest first, and
// deletes its row; nil when none is free. The DELETE is guarded by status, so of two
// transactions that read the same row, one deletes it and the other finds it gone and tries the
// next.
func claimPoolWorkspace(ctx context.Context, tx bun.Tx, c *PoolClaim) (*PoolWorkspace, error) {
	if len(c.Configs) == 0 {
		return nil, nil
	}
	hosts, err := claimableHosts(ctx, tx)
	if err != nil || len(hosts) == 0 {
		return nil, err
	}
	for range 5 {
		w := new(PoolWorkspace)
		err := tx.NewSelect().Model(w).Where("status = ?", PoolFree).Where("image = ?", c.Image).
			Where("config_sum IN (?)", bun.List(c.Configs)).Where("host IN (?)", bun.List(hosts)).
			OrderExpr("CASE WHEN config_sum = ? THEN 0 ELSE 1 END, created_at", c.Configs[0]).Limit(1).Scan(ctx)
		if errors.Is(notFound(err), ErrNotFound) {
			return nil, nil
		} else if err != nil {
			return nil, fmt.Errorf("store: unable to find a free pool workspace: %w", err)
		}
		res, err := tx.NewDelete().Model((*PoolWorkspace)(nil)).Where("id = ?", w.ID).Where("status = ?", PoolFree).Exec(ctx)
		if err != nil {
			return nil, fmt.Errorf("store: unable to claim pool workspace: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return w, nil
		}
	}
	return nil, nil
}

// PoolCounts counts pooled workspaces by status.
func (s *Store) PoolCounts(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Status string `bun:"status"`
		N      int    `bun:"n"`
	}
	err := s.DB.NewSelect().Model((*PoolWorkspace)(nil)).Column("status").ColumnExpr("count(*) AS n").Group("status").Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("store: unable to count pool workspaces: %w", err)
	}
	n := map[string]int{}
	for _, r := range rows {
		n[r.Status] = r.N
	}
	return n, nil
}
