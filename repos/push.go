package repos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/doce-dev/doce/outbound"
)

// PushRequest is work to push: a git bundle taken out of a workspace, whose HEAD is the work,
// pushed to Branch of the repository at Remote.URL.
type PushRequest struct {
	Remote Source // URL, Username and Token; its Ref is not used
	Bundle string // the bundle's path on this side
	Branch string // the branch on the forge to push to (ValidateRef)
	// Base is the branch the work is measured against (a pull request's base); empty: the
	// repository's default branch. It must exist on the forge.
	Base string
	// OwnBranch asks that Branch not be Base: a pull request's head needs a branch of its own.
	OwnBranch bool
}

// PushResult is what a push did.
type PushResult struct {
	Commit   string // the commit Branch points at now
	Base     string // the base branch, as asked or the repository's default
	UpToDate bool   // Branch was there already: nothing was sent
}

// bundleRef is where the bundle's HEAD is fetched to in the scratch repository.
const bundleRef = "refs/heads/doce-push"

// Push pushes the HEAD of a bundle to req.Branch of the forge's repository. The bundle is
// hostile (it came out of a workspace): it is fetched into a fresh bare repository of doce's
// own with every object checked, so nothing of the workspace's .git but its objects and one
// ref (no configuration, no hooks) is ever read here. The forge is then asked, with the token
// only in git's environment, where Branch and Base are: work already there is not sent again
// (a retried push is a no-op), work with nothing beyond Base is refused, and the push is a
// fast-forward or nothing. Errors a person has to act on are *Error.
func Push(ctx context.Context, policy *outbound.Policy, req PushRequest, lim Limits) (PushResult, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	repo, local, cleanup, err := scratchRepo(ctx, "doce-push-", "work.git")
	if err != nil {
		return PushResult{}, err
	}
	defer cleanup()
	// fetch checks each object as it comes (fetch.fsckObjects; older gits skip that for a
	// bundle), fsck then the whole repository: every object sound and reachable.
	for _, args := range [][]string{{"fetch", "--quiet", "--no-tags", "--", req.Bundle, "HEAD:" + bundleRef}, {"fsck", "--no-progress", "--no-dangling"}} {
		if _, err := run(ctx, local, repo, args...); err != nil {
			var ge *gitError
			if errors.As(err, &ge) && ctx.Err() == nil {
				return PushResult{}, &Error{Message: "The work taken out of the workspace failed git's checks (a damaged or incomplete repository): doce does not push it."}
			}
			return PushResult{}, err
		}
	}
	out, err := run(ctx, local, repo, "rev-parse", "--verify", bundleRef+"^{commit}")
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{Commit: strings.TrimSpace(out), Base: req.Base}

	remote, cleanupRemote, err := remoteEnv(ctx, policy, req.Remote.URL, req.Remote.Username, req.Remote.Token)
	if err != nil {
		return PushResult{}, err
	}
	defer cleanupRemote()
	refs, err := lsRemote(ctx, remote, repo, req)
	if err != nil {
		return PushResult{}, err
	}
	if res.Base == "" {
		res.Base = refs.defaultBranch
	}
	baseCommit, hasBase := refs.heads[res.Base]
	switch {
	case req.OwnBranch && res.Base == req.Branch:
		return PushResult{}, &Error{Message: fmt.Sprintf("A pull request needs a branch of its own: push to a branch other than its base (%s).", res.Base)}
	case req.Base != "" && !hasBase:
		return PushResult{}, &Error{Message: fmt.Sprintf("The repository has no branch %q to measure the work against: name an existing base branch.", res.Base)}
	case hasBase && baseCommit == res.Commit:
		return PushResult{}, &Error{Message: fmt.Sprintf("Nothing to push: the workspace has no commits beyond %s.", res.Base)}
	case refs.heads[req.Branch] == res.Commit:
		res.UpToDate = true
		return res, nil
	}
	_, err = run(ctx, remote, repo, "push", "--quiet", "--no-verify", "--", req.Remote.URL, bundleRef+":refs/heads/"+req.Branch)
	if err != nil {
		return PushResult{}, pushError(ctx, req, err)
	}
	return res, nil
}

// remoteRefs is what the forge said of its branches.
type remoteRefs struct {
	defaultBranch string            // where its HEAD points ("" in an empty repository)
	heads         map[string]string // branch → commit, of the branches asked for
}

// lsRemote asks the forge for its default branch and the branches the push is about.
func lsRemote(ctx context.Context, env []string, repo string, req PushRequest) (remoteRefs, error) {
	args := []string{"ls-remote", "--symref", "--", req.Remote.URL, "HEAD", "refs/heads/" + req.Branch}
	if req.Base != "" {
		args = append(args, "refs/heads/"+req.Base)
	}
	out, err := run(ctx, env, repo, args...)
	if err != nil {
		return remoteRefs{}, remoteError(ctx, req.Remote, err)
	}
	refs := remoteRefs{heads: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		left, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		if target, ok := strings.CutPrefix(left, "ref: refs/heads/"); ok && name == "HEAD" {
			refs.defaultBranch = target
		} else if branch, ok := strings.CutPrefix(name, "refs/heads/"); ok {
			refs.heads[branch] = left
		}
	}
	if refs.defaultBranch != "" && req.Base == "" {
		// The default branch's commit was not asked for by name: the HEAD line carries it.
		sc = bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			if left, name, _ := strings.Cut(sc.Text(), "\t"); name == "HEAD" && !strings.HasPrefix(left, "ref: ") {
				refs.heads[refs.defaultBranch] = left
			}
		}
	}
	return refs, nil
}

// pushError turns what git push said into words for the user.
func pushError(ctx context.Context, req PushRequest, err error) error {
	var ge *gitError
	if !errors.As(err, &ge) || ctx.Err() != nil {
		return remoteError(ctx, req.Remote, err)
	}
	s := strings.ToLower(ge.stderr)
	switch {
	case strings.Contains(s, "protected") || strings.Contains(s, "pre-receive hook declined") || strings.Contains(s, "remote rejected"):
		return &Error{Message: fmt.Sprintf("The forge refused the push to %s (a protected branch, or a rule of the repository): push to another branch.", req.Branch)}
	case strings.Contains(s, "non-fast-forward") || strings.Contains(s, "fetch first") || strings.Contains(s, "[rejected]"):
		return &Error{Message: fmt.Sprintf("The branch %s on the forge has commits the workspace does not have: push to another branch, or bring them into the workspace first.", req.Branch)}
	}
	return remoteError(ctx, req.Remote, err)
}

// remoteError is cloneError for any talk with the remote: a refused token says it must be
// allowed to write.
func remoteError(ctx context.Context, src Source, err error) error {
	var ge *gitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Message: "The forge did not take the push in time."}
	case ctx.Err() != nil:
		return ctx.Err()
	case !errors.As(err, &ge):
		return err
	}
	e := cloneError(src, ge.stderr)
	var re *Error
	if errors.As(e, &re) && re.TokenRefused {
		return &Error{Message: "The forge refused the token of your connection to it: connect it again with a token that may write to this repository.", TokenRefused: true}
	}
	return e
}

// gitError is a git command that exited with an error; stderr is what it said (no token: the
// token is only in its environment).
type gitError struct {
	args   string
	stderr string
}

func (e *gitError) Error() string {
	return fmt.Sprintf("repos: git %s failed: %s", e.args, strings.TrimSpace(e.stderr))
}

// run runs git with env in dir and returns its output.
func run(ctx context.Context, env []string, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env, cmd.Dir = env, dir
	var stdout, stderr strings.Builder
	cmd.Stdout = &limitedWriter{w: &stdout, n: 1 << 20}
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8 << 10}
	if err := cmd.Run(); err != nil {
		exitError := &exec.ExitError{}
		if errors.As(err, &exitError) {
			return "", &gitError{args: args[0], stderr: stderr.String()}
		}
		return "", fmt.Errorf("repos: unable to run git %s: %w", args[0], err)
	}
	return stdout.String(), nil
}
