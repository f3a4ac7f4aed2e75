package workspace

import (
	"context"
	"io"
)

// Backend is where a project's workspace runs: everything doce does to a workspace goes
// through it, so the activities, the pool, files, export, preview, stop and start, the idle
// stop and teardown do not know which engine it is. Manager (Docker) is one; which one a doce
// runs is DOCE_WORKSPACE_BACKEND.
//
// Like a Coder provisioner or an OpenHands runtime, it has two halves: the lifecycle of the
// workspace (Up, Start, Stop, Down, Inspect, the pool's part) and access to what runs inside
// (the files, a command run in /workspace, the configuration). Every method is idempotent and
// finds the workspace again by the project's id alone, so a retried activity finds what an
// earlier attempt made.
type Backend interface {
	// Ping checks the engine answers; Close releases its client.
	Ping(ctx context.Context) error
	Close() error

	// Up creates what is missing of the project's workspace and starts it.
	Up(ctx context.Context, s Spec) (Workspace, error)
	// Start starts an existing, stopped workspace; Stop stops it keeping its files; Down
	// removes everything the project owns. Missing objects are fine for Stop and Down.
	Start(ctx context.Context, projectID string) (Workspace, error)
	Stop(ctx context.Context, projectID string) error
	Down(ctx context.Context, projectID string) error
	// Inspect says whether the workspace exists and runs, and where it is reached.
	Inspect(ctx context.Context, projectID string) (Container, error)
	// Accepts checks something accepts on the OpenCode port a running workspace is reached at.
	Accepts(ctx context.Context, projectID string, hostPort int) error

	// The pool: which workspaces a pool made, whether a project's was one, and giving a
	// claimed one its full share of the CPU.
	PooledIDs(ctx context.Context, owner string) ([]string, error)
	Pooled(ctx context.Context, projectID string) (pooled bool, configSum string, err error)
	ClaimCPU(ctx context.Context, projectID string) error
	ReplaceConfig(ctx context.Context, projectID string, replaceable func(now []byte) bool, to []byte) (now []byte, replaced bool, err error)

	// Files opens /workspace as a tar stream, entries under "workspace/".
	Files(ctx context.Context, projectID string) (io.ReadCloser, error)
	// The project's repository: placing an imported tree, committing, bundling, merging.
	HasRepository(ctx context.Context, projectID string) (bool, error)
	PlaceTree(ctx context.Context, projectID, dir string) error
	Commit(ctx context.Context, projectID string, author Author, message string) (bool, error)
	Bundle(ctx context.Context, projectID string, w io.Writer, max int64) error
	Merge(ctx context.Context, projectID string, r io.Reader, base string, author Author, message string) (MergeResult, error)
}

// Backends DOCE_WORKSPACE_BACKEND names.
const (
	BackendDocker     = "docker"
	BackendKubernetes = "kubernetes"
)

var _ Backend = (*Manager)(nil)
