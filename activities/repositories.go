package activities

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/outbound"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// Trees is what the repository activities ask of a project's workspace: whether a repository
// is there whole, placing one, and committing and taking out the work to push.
type Trees interface {
	HasRepository(ctx context.Context, projectID string) (bool, error)
	PlaceTree(ctx context.Context, projectID, dir string) error
	Commit(ctx context.Context, projectID string, author workspace.Author, message string) (bool, error)
	Bundle(ctx context.Context, projectID string, w io.Writer, max int64) error
	Merge(ctx context.Context, projectID string, r io.Reader, base string, author workspace.Author, message string) (workspace.MergeResult, error)
}

// Repositories imports the repository a project was made from into its workspace, and pushes
// the project's work back to its forge.
type Repositories struct {
	Store     *store.Store
	Secrets   Decrypter
	Workspace Trees
	Policy    *outbound.Policy // where clones may go (DOCE_ALLOWED_PRIVATE_HOSTS)
	Limits    repos.Limits
	Host      string // as Docker.Host
}

// Import clones the project's repository on this side, with the owner's forge token when one of
// their forge connections serves its URL, and places the tree in the workspace. A workspace
// that holds it already (an attempt whose result was lost) is left as it is. A repository, ref
// or token that cannot work as asked ends the step for a person to fix (ErrTypeImportRefused).
func (a *Repositories) Import(ctx context.Context, in workflows.StepInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil || p.RepositoryURL == "" {
		return err
	}
	done, err := a.Workspace.HasRepository(ctx, p.ID)
	if errors.Is(err, workspace.ErrStartedWithoutImport) {
		return temporal.NewNonRetryableApplicationError("The workspace stopped waiting for the repository and started empty: delete this project and create it again.", workflows.ErrTypeImportRefused, nil)
	} else if err != nil || done {
		return err
	}
	src := repos.Source{URL: p.RepositoryURL, Ref: p.RepositoryRef}
	f, err := a.Store.ForgeForURL(ctx, p.OwnerUserID, p.RepositoryURL)
	if err != nil {
		return err
	} else if f != nil {
		token, err := a.Secrets.Decrypt(ctx, f.TokenCiphertext, secrets.ForgeContext(f.UserID, f.ID))
		if errors.Is(err, secrets.ErrUndecryptable) {
			return temporal.NewNonRetryableApplicationError("The token of your connection to "+f.BaseURL+" cannot be read: connect the forge again.", workflows.ErrTypeImportRefused, nil)
		} else if err != nil {
			return err
		}
		src.Username, src.Token = f.AccountLogin, string(token)
		if err := a.Store.Audit(ctx, nil, store.AuditEvent{ActorID: p.OwnerUserID, Action: "forge.decrypt-for-use", TargetType: "forge", TargetID: f.ID, Detail: "import into project " + p.ID}); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "doce-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tree := filepath.Join(dir, "repository")
	// What git reports it received goes to the setup page, once a second at most, and the
	// whole when the clone ends. Progress is worth no failure: a write that fails is logged.
	var wrote time.Time
	err = repos.Clone(ctx, a.Policy, src, tree, a.Limits, func(pr repos.CloneProgress) {
		if pr.Objects < pr.TotalObjects && time.Since(wrote) < time.Second {
			return
		}
		wrote = time.Now()
		if err := a.Store.RecordImportProgress(ctx, p.ID, pr.Objects, pr.TotalObjects, pr.Bytes); err != nil {
			activity.GetLogger(ctx).Warn("unable to record the clone's progress", "project_id", p.ID, "error", err)
		}
	})
	var refused *repos.Error
	if errors.As(err, &refused) && refused.TokenRefused && f != nil {
		return a.refusedToken(ctx, f, "read this repository", func(msg string) error {
			return temporal.NewNonRetryableApplicationError(msg, workflows.ErrTypeImportRefused, nil)
		})
	} else if errors.As(err, &refused) {
		return temporal.NewNonRetryableApplicationError(refused.Message, workflows.ErrTypeImportRefused, nil)
	} else if err != nil {
		return err
	}
	return a.Workspace.PlaceTree(ctx, p.ID, tree)
}
