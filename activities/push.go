package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/forges"
	"github.com/doce-dev/doce/repos"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// refusedPush ends a push for a person to act on, with msg shown to them.
func refusedPush(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, workflows.ErrTypePushRefused, nil)
}

// PushWork commits the changes in the project's workspace as its owner (no hook runs), takes
// the repository's HEAD out as a git bundle no larger than the import limit, and pushes it from
// this side to in.Branch of the project's repository with the token of the owner's forge
// connection, which never enters the workspace. Run again after a lost result it commits
// nothing new and finds the forge has the work.
func (a *Repositories) PushWork(ctx context.Context, in workflows.PushWorkInput) (workflows.PushWorkResult, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := loadProject(ctx, a.Store, in.ProjectID)
	if err != nil {
		return workflows.PushWorkResult{}, err
	}
	remote, conn, err := a.remote(ctx, p, "push from project "+p.ID)
	if err != nil {
		return workflows.PushWorkResult{}, err
	}
	owner, err := a.Store.UserByID(ctx, p.OwnerUserID)
	if err != nil {
		return workflows.PushWorkResult{}, err
	}
	author := workspace.Author{Name: owner.Username, Email: owner.Username + "@doce.invalid"}
	committed, err := a.Workspace.Commit(ctx, p.ID, author, in.Message)
	if err != nil {
		return workflows.PushWorkResult{}, workspaceError("Committing in the workspace", err)
	}

	dir, err := os.MkdirTemp("", "doce-push-bundle-")
	if err != nil {
		return workflows.PushWorkResult{}, err
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "work.bundle")
	f, err := os.OpenFile(bundle, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return workflows.PushWorkResult{}, err
	}
	err = a.Workspace.Bundle(ctx, p.ID, f, a.Limits.MaxBytes)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, workspace.ErrBundleTooLarge) {
		return workflows.PushWorkResult{}, refusedPush(fmt.Sprintf("The project's repository is larger than the limit of %d MB a push may carry.", a.Limits.MaxBytes>>20))
	} else if err != nil {
		return workflows.PushWorkResult{}, workspaceError("Taking the work out of the workspace", err)
	}

	res, err := repos.Push(ctx, a.Policy, repos.PushRequest{Remote: remote, Bundle: bundle, Branch: in.Branch, Base: in.Base, OwnBranch: in.PullRequest}, a.Limits)
	var refused *repos.Error
	if errors.As(err, &refused) && refused.TokenRefused {
		return workflows.PushWorkResult{}, a.refusedToken(ctx, conn, "write to this repository", refusedPush)
	} else if errors.As(err, &refused) {
		return workflows.PushWorkResult{}, refusedPush(refused.Message)
	} else if err != nil {
		return workflows.PushWorkResult{}, err
	}
	return workflows.PushWorkResult{Commit: res.Commit, Base: res.Base, Committed: committed, UpToDate: res.UpToDate}, nil
}

// OpenPullRequest finds the open pull request of in.Head into in.Base on the project's forge,
// or opens one: a retried step, and every later push of the branch, keeps the one.
func (a *Repositories) OpenPullRequest(ctx context.Context, in workflows.OpenPullRequestInput) (workflows.PullRequestRef, error) {
	p, err := loadProject(ctx, a.Store, in.ProjectID)
	if err != nil {
		return workflows.PullRequestRef{}, err
	}
	conn, err := a.pushConnection(ctx, p)
	if err != nil {
		return workflows.PullRequestRef{}, err
	}
	repo, err := forges.RepoPath(conn.BaseURL, p.RepositoryURL)
	if err != nil {
		return workflows.PullRequestRef{}, refusedPush("The project's repository URL names no repository on " + conn.BaseURL + ".")
	}
	token, err := a.token(ctx, p, conn, "pull request for project "+p.ID)
	if err != nil {
		return workflows.PullRequestRef{}, err
	}
	f, err := forges.Open(conn.Kind, conn.BaseURL, token, a.Policy.Client(30*time.Second))
	if err != nil {
		return workflows.PullRequestRef{}, err
	}
	pr, err := f.FindPullRequest(ctx, repo, in.Head, in.Base)
	if err == nil && pr == nil {
		var opened forges.PullRequest
		opened, err = f.OpenPullRequest(ctx, repo, in.Head, in.Base, in.Title, in.Body)
		pr = &opened
	}
	var refused *forges.RefusedError
	switch {
	case err == nil:
		return workflows.PullRequestRef{Number: pr.Number, URL: pr.URL}, nil
	case errors.Is(err, forges.ErrUnauthorized):
		return workflows.PullRequestRef{}, a.refusedToken(ctx, conn, "open pull requests on this repository", refusedPush)
	case errors.Is(err, forges.ErrNoRepository):
		return workflows.PullRequestRef{}, refusedPush("The forge has no repository " + repo + " that your token may see.")
	case errors.As(err, &refused):
		return workflows.PullRequestRef{}, refusedPush(refused.Error())
	}
	return workflows.PullRequestRef{}, err
}

// RecordPush records how a push ended on the project.
func (a *Repositories) RecordPush(ctx context.Context, rec workflows.PushRecord) error {
	o := store.PushOutcome{Status: store.PushDone, Commit: rec.Commit}
	if rec.Failed {
		o.Status, o.Error = store.PushFailed, rec.Error
	}
	if rec.PullRequest != nil {
		o.PullRequestURL, o.PullRequestNumber = rec.PullRequest.URL, rec.PullRequest.Number
	}
	return a.Store.RecordPush(ctx, rec.ProjectID, rec.Branch, o)
}

// pushConnection is the owner's forge connection serving the project's repository; a project
// not made from one, or whose forge is not connected, cannot push.
func (a *Repositories) pushConnection(ctx context.Context, p *store.Project) (*store.ForgeConnection, error) {
	if p.RepositoryURL == "" {
		return nil, refusedPush("The project was not made from a git repository: there is nowhere to push.")
	}
	f, err := a.Store.ForgeForURL(ctx, p.OwnerUserID, p.RepositoryURL)
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, refusedPush("Connect the forge of " + p.RepositoryURL + " under Forges to push to it.")
	}
	return f, nil
}

// remote is where the project's work is pushed, with the owner's token, and the connection
// the token is of.
func (a *Repositories) remote(ctx context.Context, p *store.Project, use string) (repos.Source, *store.ForgeConnection, error) {
	f, err := a.pushConnection(ctx, p)
	if err != nil {
		return repos.Source{}, nil, err
	}
	token, err := a.token(ctx, p, f, use)
	if err != nil {
		return repos.Source{}, nil, err
	}
	return repos.Source{URL: p.RepositoryURL, Username: f.AccountLogin, Token: token}, f, nil
}

// refusedToken records that the forge refused the token of connection f, so that its owner sees
// the connection needs a new one, and ends the step with refuse, naming the connection; may is
// what the token has to be allowed. A failure to record it is retried.
func (a *Repositories) refusedToken(ctx context.Context, f *store.ForgeConnection, may string, refuse func(string) error) error {
	if err := a.Store.MarkForgeTokenRefused(ctx, f); err != nil {
		return err
	}
	return refuse(fmt.Sprintf("%s at %s refused the token of your connection to it (account %s): it was revoked or has expired, or it may not %s. "+
		"Replace the token on the Forges page, then try again.", forges.Name(f.Kind), f.BaseURL, f.AccountLogin, may))
}

// token decrypts the connection's token for one use, audited.
func (a *Repositories) token(ctx context.Context, p *store.Project, f *store.ForgeConnection, use string) (string, error) {
	token, err := a.Secrets.Decrypt(ctx, f.TokenCiphertext, secrets.ForgeContext(f.UserID, f.ID))
	if errors.Is(err, secrets.ErrUndecryptable) {
		return "", refusedPush("The token of your connection to " + f.BaseURL + " cannot be read: connect the forge again.")
	} else if err != nil {
		return "", err
	}
	if err := a.Store.Audit(ctx, nil, store.AuditEvent{ActorID: p.OwnerUserID, Action: "forge.decrypt-for-use", TargetType: "forge", TargetID: f.ID, Detail: use}); err != nil {
		return "", err
	}
	return string(token), nil
}

// workspaceError sorts what went wrong running git in the workspace: no workspace, or git
// refusing there, is for the user; anything else is retried.
func workspaceError(what string, err error) error {
	var exit *workspace.ExitError
	switch {
	case errors.Is(err, workspace.ErrNoWorkspace), errors.Is(err, workspace.ErrNotRunning):
		return refusedPush("The project's workspace is not running: start the project, then push.")
	case errors.As(err, &exit):
		line, _, _ := strings.Cut(strings.TrimSpace(exit.Stderr), "\n")
		if len(line) > 300 {
			line = line[:300]
		}
		return refusedPush(what + " failed; git said: " + line)
	}
	return err
}

// PullWork fetches in.Base (empty: the repository's default branch) of the project's
// repository on this side with the token of the owner's forge connection, which never enters
// the workspace, commits the changes in the workspace as its owner (no hook runs), and merges
// the base into the workspace's branch from a bundle handed in on the command's input.
// Conflicts abort the merge, leaving the workspace's files as they were, and end the pull naming the
// files. Run again after a lost result it commits nothing new and finds the base merged.
func (a *Repositories) PullWork(ctx context.Context, in workflows.PullWorkInput) (workflows.PullWorkResult, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := loadProject(ctx, a.Store, in.ProjectID)
	if err != nil {
		return workflows.PullWorkResult{}, err
	}
	remote, conn, err := a.remote(ctx, p, "pull into project "+p.ID)
	if err != nil {
		return workflows.PullWorkResult{}, err
	}
	owner, err := a.Store.UserByID(ctx, p.OwnerUserID)
	if err != nil {
		return workflows.PullWorkResult{}, err
	}

	dir, err := os.MkdirTemp("", "doce-pull-bundle-")
	if err != nil {
		return workflows.PullWorkResult{}, err
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "base.bundle")
	fetched, err := repos.FetchBundle(ctx, a.Policy, remote, in.Base, bundle, a.Limits)
	var refused *repos.Error
	if errors.As(err, &refused) && refused.TokenRefused {
		return workflows.PullWorkResult{}, a.refusedToken(ctx, conn, "read this repository", refusedPush)
	} else if errors.As(err, &refused) {
		return workflows.PullWorkResult{}, refusedPush(refused.Message)
	} else if err != nil {
		return workflows.PullWorkResult{}, err
	}

	// The agent's work is committed first, as a push does: the merge then never touches an
	// uncommitted change, and a conflict leaves it as the commit it now is.
	author := workspace.Author{Name: owner.Username, Email: owner.Username + "@doce.invalid"}
	if _, err := a.Workspace.Commit(ctx, p.ID, author, "Work on "+p.Name+" made in doce, before merging "+fetched.Base); err != nil {
		return workflows.PullWorkResult{}, workspaceError("Committing in the workspace", err)
	}
	f, err := os.Open(bundle)
	if err != nil {
		return workflows.PullWorkResult{}, err
	}
	defer f.Close()
	merged, err := a.Workspace.Merge(ctx, p.ID, f, fetched.Base, author, "Merge "+fetched.Base+" of "+p.RepositoryURL)
	if err != nil {
		return workflows.PullWorkResult{}, workspaceError("Merging in the workspace", err)
	}
	if len(merged.Conflicts) > 0 {
		return workflows.PullWorkResult{}, refusedPush(conflictMessage(fetched.Base, merged.Conflicts))
	}
	return workflows.PullWorkResult{Base: fetched.Base, Commit: fetched.Commit, Ahead: merged.Ahead, Behind: merged.Behind}, nil
}

// conflictMessage names the files a merge of base conflicted in, the first 20 of them.
func conflictMessage(base string, files []string) string {
	more := ""
	if len(files) > 20 {
		more = fmt.Sprintf(" and %d more", len(files)-20)
		files = files[:20]
	}
	return fmt.Sprintf("The base (%s) changed the same lines as the project's work in: %s%s. Nothing was merged: the workspace's files are as they were.",
		base, strings.Join(files, ", "), more)
}

// RecordPull records how a pull ended on the project.
func (a *Repositories) RecordPull(ctx context.Context, rec workflows.PullRecord) error {
	o := store.PullOutcome{Status: store.PushDone, Base: rec.Base, Commit: rec.Commit, Ahead: rec.Ahead, Behind: rec.Behind}
	if rec.Failed {
		o.Status, o.Error = store.PushFailed, rec.Error
	}
	return a.Store.RecordPull(ctx, rec.ProjectID, o)
}
