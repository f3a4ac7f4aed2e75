package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/doce-dev/doce/status"
)

// Project is one AI coding workspace.
type Project struct {
	bun.BaseModel `bun:"table:projects"`

	ID                       string         `bun:"id,pk"`
	OwnerUserID              string         `bun:"owner_user_id"`
	Name                     string         `bun:"name"`
	Slug                     string         `bun:"slug"`
	Prompt                   string         `bun:"prompt"`
	ProviderID               string         `bun:"provider_id"`
	ModelID                  string         `bun:"model_id"`
	Status                   status.Project `bun:"status"`
	SetupStep                string         `bun:"setup_step"`
	SetupAttempt             int            `bun:"setup_attempt"`
	SetupError               string         `bun:"setup_error"`
	SetupProgress            string         `bun:"setup_progress"` // JSON of workflows.Progress, as last recorded
	WorkflowID               string         `bun:"workflow_id"`
	ContainerID              string         `bun:"container_id"`
	ContainerName            string         `bun:"container_name"`
	HostPort                 int            `bun:"host_port"`
	PreviewHostPort          int            `bun:"preview_host_port"` // where the workspace's preview port is published; 0: none
	OpenCodeSessionID        string         `bun:"opencode_session_id"`
	PromptSentAt             *time.Time     `bun:"prompt_sent_at"`
	SessionRequestedAt       *time.Time     `bun:"session_requested_at"`
	PromptRequestedAt        *time.Time     `bun:"prompt_requested_at"`
	ServerPasswordCiphertext string         `bun:"server_password_ciphertext"`
	CreatedAt                time.Time      `bun:"created_at"`
	UpdatedAt                time.Time      `bun:"updated_at"`
	DeletedAt                *time.Time     `bun:"deleted_at"`
	RequestID                string         `bun:"request_id,nullzero"`
	// Host is the Docker host the workspace is on (hosts.name); empty until it is placed.
	Host string `bun:"host"`
	// EgressMode is what the workspace reaches (egress.Mode); empty: the operator's default.
	// EgressAllow is the project's own allow list, comma-separated.
	EgressMode  string `bun:"egress_mode"`
	EgressAllow string `bun:"egress_allow"`
	// RepositoryURL and RepositoryRef name the git repository the project was made from (setup
	// clones it into the workspace); empty for a project from a prompt alone.
	RepositoryURL string `bun:"repository_url"`
	RepositoryRef string `bun:"repository_ref"`
	// What the clone of the repository received, as git reported it (RecordImportProgress).
	ImportObjects      int64 `bun:"import_objects"`
	ImportTotalObjects int64 `bun:"import_total_objects"`
	ImportBytes        int64 `bun:"import_bytes"`
	// The project's work pushed to the repository (RecordPushStarted, RecordPush): the branch,
	// the last push's status, why it failed, when it started, the commit it pushed, and the
	// pull request open for the branch (number 0: none).
	PushBranch        string     `bun:"push_branch"`
	PushStatus        PushStatus `bun:"push_status"`
	PushError         string     `bun:"push_error"`
	PushAt            *time.Time `bun:"push_at"`
	PushCommit        string     `bun:"push_commit"`
	PullRequestURL    string     `bun:"pull_request_url"`
	PullRequestNumber int64      `bun:"pull_request_number"`
	// The base branch pulled into the workspace (RecordPullStarted, RecordPull): the branch,
	// the last pull's status, why it failed, when it started, the base commit it merged, and
	// the workspace's HEAD ahead of and behind that commit when it ended (nil: not counted).
	PullBase   string     `bun:"pull_base"`
	PullStatus PushStatus `bun:"pull_status"`
	PullError  string     `bun:"pull_error"`
	PullAt     *time.Time `bun:"pull_at"`
	PullCommit string     `bun:"pull_commit"`
	PullAhead  *int       `bun:"pull_ahead"`
	PullBehind *int       `bun:"pull_behind"`
}

// PushStatus is where a project's last push is.
type PushStatus string

// Push statuses; empty: never pushed.
const (
	PushRunning PushStatus = "running"
	PushDone    PushStatus = "done"
	PushFailed  PushStatus = "failed"
)

// PushStale is how long a push may be recorded as running before another may start anyway:
// longer than a push's steps with all their retries take, so only a push whose run was lost
// without recording its end is overtaken.
const PushStale = time.Hour

// RecordPushStarted marks a push of the project's work to branch as running since at, unless
// one is running (ErrConflict). The pull request recorded is forgotten when the branch
// changes: it was the other branch's.
func (s *Store) RecordPushStarted(ctx context.Context, id, branch string, at time.Time) error {
	at = at.UTC()
	err := s.setProject(ctx, id, "record a push", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("pull_request_url = CASE WHEN push_branch = ? THEN pull_request_url ELSE '' END", branch).
			Set("pull_request_number = CASE WHEN push_branch = ? THEN pull_request_number ELSE 0 END", branch).
			Set("push_branch = ?", branch).Set("push_status = ?", PushRunning).Set("push_error = ''").Set("push_at = ?", at).
			WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
				return q.Where("push_status <> ?", PushRunning).WhereOr("push_at < ?", at.Add(-PushStale))
			})
	})
	if errors.Is(err, ErrNotFound) {
		if _, perr := s.Project(ctx, id); perr != nil {
			return perr
		}
		return ErrConflict
	}
	return err
}

// PushOutcome is how a push ended.
type PushOutcome struct {
	Status PushStatus // PushDone or PushFailed
	Error  string     // why it failed, fit to show
	Commit string     // the commit the branch points at, when done
	// PullRequestURL and PullRequestNumber name the pull request open for the branch, when one
	// was asked for and opened or found.
	PullRequestURL    string
	PullRequestNumber int64
}

// RecordPush records how the project's push to branch ended. An outcome for a branch the
// project no longer pushes to (a later push changed it) is dropped.
func (s *Store) RecordPush(ctx context.Context, id, branch string, o PushOutcome) error {
	err := s.setProject(ctx, id, "record a push", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		q = q.Set("push_status = ?", o.Status).Set("push_error = ?", o.Error).Where("push_branch = ?", branch)
		if o.Commit != "" {
			q = q.Set("push_commit = ?", o.Commit)
		}
		if o.PullRequestNumber != 0 {
			q = q.Set("pull_request_url = ?", o.PullRequestURL).Set("pull_request_number = ?", o.PullRequestNumber)
		}
		return q
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// RecordPullStarted marks a pull of base into the project's workspace as running since at,
// unless one is running (ErrConflict); a pull shares PushStatus's statuses and PushStale.
func (s *Store) RecordPullStarted(ctx context.Context, id, base string, at time.Time) error {
	at = at.UTC()
	err := s.setProject(ctx, id, "record a pull", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("pull_base = ?", base).Set("pull_status = ?", PushRunning).Set("pull_error = ''").Set("pull_at = ?", at).
			WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
				return q.Where("pull_status <> ?", PushRunning).WhereOr("pull_at < ?", at.Add(-PushStale))
			})
	})
	if errors.Is(err, ErrNotFound) {
		if _, perr := s.Project(ctx, id); perr != nil {
			return perr
		}
		return ErrConflict
	}
	return err
}

// PullOutcome is how a pull ended.
type PullOutcome struct {
	Status        PushStatus // PushDone or PushFailed
	Error         string     // why it failed, fit to show
	Base          string     // the base branch, when known (a pull of the default branch finds it)
	Commit        string     // the base commit fetched, when known
	Ahead, Behind *int       // the workspace's HEAD against Commit, when counted
}

// RecordPull records how the project's pull ended; the figures of an earlier pull are replaced
// (by nothing when this one did not count them).
func (s *Store) RecordPull(ctx context.Context, id string, o PullOutcome) error {
	err := s.setProject(ctx, id, "record a pull", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		q = q.Set("pull_status = ?", o.Status).Set("pull_error = ?", o.Error).Set("pull_commit = ?", o.Commit).
			Set("pull_ahead = ?", o.Ahead).Set("pull_behind = ?", o.Behind)
		if o.Base != "" {
			q = q.Set("pull_base = ?", o.Base)
		}
		return q
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// CreateProject inserts p as pending and returns it with created=true. When p carries a
// RequestID its owner used before, nothing is inserted and the earlier project is returned with
// created=false: a repeated submit never makes a second project. When the slug is taken by
// another of the owner's projects, a short suffix makes it unique.
//
// When pool is set and a prebuilt workspace it allows is free on a host that takes new
// projects, the project claims it in the same transaction: it takes the workspace's id (its
// Docker objects already carry it), where it listens and its host, and the pool's row is gone.
// Two projects never get the same workspace, and a failed insert leaves the workspace in the
// pool.
func (s *Store) CreateProject(ctx context.Context, p *Project, pool *PoolClaim) (*Project, bool, error) {
	if existing, err := s.ProjectByRequest(ctx, p.OwnerUserID, p.RequestID); err != nil || existing != nil {
		return existing, false, err
	}
	now := time.Now().UTC()
	p.Status = status.Pending
	p.CreatedAt, p.UpdatedAt = now, now
	base := p.Slug
	for i := 0; ; i++ {
		err := s.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			p.ID, p.ContainerID, p.ContainerName, p.HostPort, p.ServerPasswordCiphertext, p.Host = NewID(), "", "", 0, "", ""
			if pool != nil {
				w, err := claimPoolWorkspace(ctx, tx, pool)
				if err != nil {
					return err
				}
				if w != nil {
					p.ID, p.ContainerID, p.ContainerName, p.HostPort = w.ID, w.ContainerID, w.ContainerName, w.HostPort
					p.ServerPasswordCiphertext, p.Host = w.ServerPasswordCiphertext, w.Host
				}
			}
			_, err := tx.NewInsert().Model(p).Exec(ctx)
			return err
		})
		if err == nil {
			return p, true, nil
		}
		if !isUniqueViolation(err) || i == 5 {
			return nil, false, fmt.Errorf("store: unable to create project: %w", err)
		}
		// A concurrent request with the same key won the race.
		if existing, err := s.ProjectByRequest(ctx, p.OwnerUserID, p.RequestID); err != nil || existing != nil {
			return existing, false, err
		}
		p.Slug = fmt.Sprintf("%s-%x", base, RandomToken(2))
	}
}

// ProjectByRequest is the owner's project made by the request requestID; nil when there is none
// (or requestID is empty).
func (s *Store) ProjectByRequest(ctx context.Context, ownerID, requestID string) (*Project, error) {
	if requestID == "" {
		return nil, nil
	}
	existing := new(Project)
	err := s.DB.NewSelect().Model(existing).Where("owner_user_id = ?", ownerID).Where("request_id = ?", requestID).Scan(ctx)
	if err := notFound(err); errors.Is(err, ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("store: unable to find project by request: %w", err)
	}
	return existing, nil
}

// ProjectsByOwner lists a user's projects, newest first.
func (s *Store) ProjectsByOwner(ctx context.Context, ownerID string) ([]Project, error) {
	var ps []Project
	err := s.DB.NewSelect().Model(&ps).Where("owner_user_id = ?", ownerID).Where("deleted_at IS NULL").Order("created_at DESC").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list projects: %w", err)
	}
	return ps, nil
}

// ProjectForOwner returns project id if ownerID owns it; otherwise ErrNotFound.
func (s *Store) ProjectForOwner(ctx context.Context, ownerID, id string) (*Project, error) {
	p := new(Project)
	err := s.DB.NewSelect().Model(p).Where("id = ?", id).Where("owner_user_id = ?", ownerID).Where("deleted_at IS NULL").Scan(ctx)
	if err != nil {
		return nil, notFound(err)
	}
	return p, nil
}

// Project returns a project by id, for the worker.
func (s *Store) Project(ctx context.Context, id string) (*Project, error) {
	p := new(Project)
	if err := s.DB.NewSelect().Model(p).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return p, nil
}

// LatestProject returns the most recently created project that is not deleted; ErrNotFound when
// there is none.
func (s *Store) LatestProject(ctx context.Context) (*Project, error) {
	p := new(Project)
	if err := s.DB.NewSelect().Model(p).Where("deleted_at IS NULL").Order("created_at DESC").Limit(1).Scan(ctx); err != nil {
		return nil, notFound(err)
	}
	return p, nil
}

// setProject runs one update of project id, stamping updated_at; ErrNotFound when no row
// matched (no such project, or the query's own conditions did not hold).
func (s *Store) setProject(ctx context.Context, id, what string, set func(*bun.UpdateQuery) *bun.UpdateQuery) error {
	q := s.DB.NewUpdate().Model((*Project)(nil)).Set("updated_at = ?", time.Now().UTC()).Where("id = ?", id)
	res, err := set(q).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// RecordSetupStarted records the run setting the project up.
func (s *Store) RecordSetupStarted(ctx context.Context, id, workflowID string) error {
	return s.setProject(ctx, id, "record the setup run", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("workflow_id = ?", workflowID).Set("status = ?", status.SettingUp)
	})
}

// RecordSetupProgress records where the setup is, as its workflow reports it: the step, the
// project's status, why it failed (empty: it did not) and, when progress is not empty, the step
// table as JSON. A project being deleted stays so: a report that lost the race to a delete does
// not bring it back.
func (s *Store) RecordSetupProgress(ctx context.Context, id, step string, to status.Project, setupError, progress string) error {
	return s.setProject(ctx, id, "record setup progress", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		q = q.Set("setup_step = ?", step).Set("status = ?", to).Set("setup_error = ?", setupError).
			Where("status NOT IN (?)", bun.List([]status.Project{status.Deleting, status.Deleted}))
		if progress != "" {
			q = q.Set("setup_progress = ?", progress)
		}
		return q
	})
}

// RecordImportProgress records what the clone of the project's repository has received so far:
// objects of the total git announced, and bytes.
func (s *Store) RecordImportProgress(ctx context.Context, id string, objects, totalObjects, bytes int64) error {
	return s.setProject(ctx, id, "record import progress", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("import_objects = ?", objects).Set("import_total_objects = ?", totalObjects).Set("import_bytes = ?", bytes)
	})
}

// ClearSetupError forgets why the project's setup last failed.
func (s *Store) ClearSetupError(ctx context.Context, id string) error {
	return s.setProject(ctx, id, "clear the setup error", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("setup_error = ''")
	})
}

// MarkProjectDeleting records that the project's teardown runs; its gateway token stops
// working.
func (s *Store) MarkProjectDeleting(ctx context.Context, id string) error {
	err := s.setProject(ctx, id, "mark the project deleting", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("status = ?", status.Deleting).Where("deleted_at IS NULL")
	})
	if err != nil {
		return err
	}
	return s.RevokeGatewayToken(ctx, id)
}

// RecordContainer records the project's workspace container and where it listens.
func (s *Store) RecordContainer(ctx context.Context, id, containerID, containerName string, hostPort, previewHostPort int) error {
	return s.setProject(ctx, id, "record the workspace container", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("container_id = ?", containerID).Set("container_name = ?", containerName).
			Set("host_port = ?", hostPort).Set("preview_host_port = ?", previewHostPort)
	})
}

// SetProjectEgress sets what the project's workspace reaches; the egress proxy reads it at
// each connection.
func (s *Store) SetProjectEgress(ctx context.Context, id, mode, allow string) error {
	return s.setProject(ctx, id, "set the project's egress", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("egress_mode = ?", mode).Set("egress_allow = ?", allow).Where("deleted_at IS NULL")
	})
}

// RecordPorts records where a restarted workspace listens now (Docker picks new host ports).
func (s *Store) RecordPorts(ctx context.Context, id string, hostPort, previewHostPort int) error {
	return s.setProject(ctx, id, "record the workspace ports", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("host_port = ?", hostPort).Set("preview_host_port = ?", previewHostPort)
	})
}

// MarkSessionRequested records that a session is about to be asked for, so a retried step
// knows to look for one an interrupted attempt made before asking again.
func (s *Store) MarkSessionRequested(ctx context.Context, id string, at time.Time) error {
	return s.setProject(ctx, id, "mark the session requested", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("session_requested_at = ?", at)
	})
}

// RecordSession records the project's OpenCode session.
func (s *Store) RecordSession(ctx context.Context, id, sessionID string) error {
	return s.setProject(ctx, id, "record the session", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("opencode_session_id = ?", sessionID)
	})
}

// MarkPromptRequested records that the first prompt is about to be sent, so a retried step
// checks whether an interrupted attempt sent it before sending it again.
func (s *Store) MarkPromptRequested(ctx context.Context, id string, at time.Time) error {
	return s.setProject(ctx, id, "mark the prompt requested", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("prompt_requested_at = ?", at)
	})
}

// MarkPromptSent records that the session holds the first prompt.
func (s *Store) MarkPromptSent(ctx context.Context, id string, at time.Time) error {
	return s.setProject(ctx, id, "mark the prompt sent", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("prompt_sent_at = ?", at)
	})
}

// SetProjectPassword replaces the project's server password ciphertext (a rewrap: the same
// password under the newest key).
func (s *Store) SetProjectPassword(ctx context.Context, id, ciphertext string) error {
	return s.setProject(ctx, id, "store the project password", func(q *bun.UpdateQuery) *bun.UpdateQuery {
		return q.Set("server_password_ciphertext = ?", ciphertext)
	})
}

// TransitionProject moves live project id to status to if its status is one of from, and sets
// its setup error to setupError (empty clears it). It reports whether the project moved: false
// means another request or workflow moved it first, or it is deleted. Moving a project only
// from the states a move makes sense in is what keeps a stop, a start and a delete that race
// from undoing each other.
func (s *Store) TransitionProject(ctx context.Context, id string, from []status.Project, to status.Project, setupError string) (bool, error) {
	res, err := s.DB.NewUpdate().Model((*Project)(nil)).
		Set("status = ?", to).Set("setup_error = ?", setupError).Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Where("deleted_at IS NULL").Where("status IN (?)", bun.List(from)).
		Exec(ctx)
	if err != nil {
		return false, fmt.Errorf("store: unable to move project to %s: %w", to, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: unable to move project to %s: %w", to, err)
	}
	return n == 1, nil
}

// SetProjectPasswordOnce stores the project's server password ciphertext unless one is stored
// already, and returns the one that is stored. This keeps a retried step from changing the
// password of a container that already runs with the first one.
func (s *Store) SetProjectPasswordOnce(ctx context.Context, id, ciphertext string) (string, error) {
	_, err := s.DB.NewUpdate().Model((*Project)(nil)).
		Set("server_password_ciphertext = ?", ciphertext).
		Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Where("server_password_ciphertext = ''").
		Exec(ctx)
	if err != nil {
		return "", fmt.Errorf("store: unable to store project password: %w", err)
	}
	p, err := s.Project(ctx, id)
	if err != nil {
		return "", err
	}
	return p.ServerPasswordCiphertext, nil
}

// RecordStepAttempt records which step of the setup runs and its attempt number, so pages can
// show "running (attempt n)" while Temporal retries it.
func (s *Store) RecordStepAttempt(ctx context.Context, id, step string, attempt int) error {
	_, err := s.DB.NewUpdate().Model((*Project)(nil)).
		Set("setup_step = ?", step).Set("setup_attempt = ?", attempt).Set("updated_at = ?", time.Now().UTC()).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to record step attempt: %w", err)
	}
	return nil
}

// MarkProjectDeleted hides the project from its owner for good.
func (s *Store) MarkProjectDeleted(ctx context.Context, id string) error {
	now := time.Now().UTC()
	_, err := s.DB.NewUpdate().Model((*Project)(nil)).
		Set("status = ?", status.Deleted).Set("deleted_at = ?", now).Set("updated_at = ?", now).
		Where("id = ?", id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store: unable to mark project deleted: %w", err)
	}
	return nil
}

// ProjectsUsingProvider lists the user's live projects set up with providerID.
func (s *Store) ProjectsUsingProvider(ctx context.Context, userID, providerID string) ([]Project, error) {
	var ps []Project
	err := s.DB.NewSelect().Model(&ps).
		Where("owner_user_id = ?", userID).Where("provider_id = ?", providerID).Where("deleted_at IS NULL").
		Where("status NOT IN (?)", bun.List([]status.Project{status.Deleting, status.Deleted})).
		Order("created_at").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to list projects using %s: %w", providerID, err)
	}
	return ps, nil
}

// ProjectsPage lists projects with ids after afterID, in id order, deleted ones included.
func (s *Store) ProjectsPage(ctx context.Context, afterID string, limit int) ([]Project, error) {
	var ps []Project
	err := s.DB.NewSelect().Model(&ps).Where("id > ?", afterID).Order("id").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: unable to page projects: %w", err)
	}
	return ps, nil
}

// Usage is what a user holds, for quotas.
type Usage struct {
	// Projects not deleted (nor being deleted).
	Projects int `bun:"projects"`
	// Running are the projects whose workspace runs or is being set up or started.
	Running int `bun:"running"`
	// CreatedSince counts the projects made since the time asked about, deleted ones too.
	CreatedSince int `bun:"created_since"`
}

// runningStatuses are the projects whose workspace runs, or is about to.
var runningStatuses = []status.Project{status.Pending, status.SettingUp, status.Ready, status.Starting, status.Stopping}

// ProjectUsage counts what the user holds, and the projects they made since since.
func (s *Store) ProjectUsage(ctx context.Context, ownerID string, since time.Time) (Usage, error) {
	var u Usage
	err := s.DB.NewSelect().Model((*Project)(nil)).
		ColumnExpr("COALESCE(SUM(CASE WHEN deleted_at IS NULL AND status NOT IN (?) THEN 1 ELSE 0 END), 0) AS projects",
			bun.List([]status.Project{status.Deleting, status.Deleted})).
		ColumnExpr("COALESCE(SUM(CASE WHEN deleted_at IS NULL AND status IN (?) THEN 1 ELSE 0 END), 0) AS running", bun.List(runningStatuses)).
		ColumnExpr("COALESCE(SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), 0) AS created_since", since.UTC()).
		Where("owner_user_id = ?", ownerID).
		Scan(ctx, &u)
	if err != nil {
		return Usage{}, fmt.Errorf("store: unable to count the user's projects: %w", err)
	}
	return u, nil
}

// OldestCreatedSince is when the oldest of the user's projects made since since was made: the
// moment an hourly allowance frees a place. Zero when there is none.
func (s *Store) OldestCreatedSince(ctx context.Context, ownerID string, since time.Time) (time.Time, error) {
	var at []time.Time
	err := s.DB.NewSelect().Model((*Project)(nil)).Column("created_at").
		Where("owner_user_id = ?", ownerID).Where("created_at >= ?", since.UTC()).
		Order("created_at ASC").Limit(1).Scan(ctx, &at)
	if err != nil {
		return time.Time{}, fmt.Errorf("store: unable to read the user's projects: %w", err)
	}
	if len(at) == 0 {
		return time.Time{}, nil
	}
	return at[0], nil
}
