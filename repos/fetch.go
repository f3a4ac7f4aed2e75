package repos

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/doce-dev/doce/outbound"
)

// FetchResult is a base branch fetched and bundled.
type FetchResult struct {
	Base   string // the branch, as asked or the repository's default
	Commit string // the commit it points at
}

// FetchBundle fetches branch base of the repository at src.URL (empty: its default branch) into
// a fresh bare repository of doce's own, with the token only in git's environment, under the
// outbound policy and lim, and writes a git bundle of that one branch to bundle. The bundle
// holds the forge's objects only: no configuration, no credential. Errors a person has to act
// on are *Error.
func FetchBundle(ctx context.Context, policy *outbound.Policy, src Source, base, bundle string, lim Limits) (FetchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	repo, local, cleanup, err := scratchRepo(ctx, "doce-pull-", "base.git")
	if err != nil {
		return FetchResult{}, err
	}
	defer cleanup()
	remote, cleanupRemote, err := remoteEnv(ctx, policy, src.URL, src.Username, src.Token)
	if err != nil {
		return FetchResult{}, err
	}
	defer cleanupRemote()
	res := FetchResult{Base: base}
	if res.Base == "" {
		refs, err := lsRemote(ctx, remote, repo, PushRequest{Remote: src})
		if err != nil {
			return FetchResult{}, err
		}
		if res.Base = refs.defaultBranch; res.Base == "" {
			return FetchResult{}, &Error{Message: "The repository has no default branch to pull: name the branch."}
		}
	}
	ref := "refs/heads/" + res.Base
	// Measured as it arrives, as a clone is: a base past the limit is stopped, not downloaded.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	cmd := exec.CommandContext(fctx, "git", "fetch", "--quiet", "--no-tags", "--", src.URL, "+"+ref+":"+ref)
	cmd.Env, cmd.Dir = remote, repo
	var stderr strings.Builder
	cmd.Stderr = &limitedWriter{w: &stderr, n: 8 << 10}
	tooLarge, err := runWatched(cmd, fcancel, repo, lim.MaxBytes)
	var exit *exec.ExitError
	switch {
	case tooLarge:
		return FetchResult{}, &Error{Message: fmt.Sprintf("The base branch is larger than the limit of %d MB a pull may carry.", lim.MaxBytes>>20)}
	case err == nil:
	case ctx.Err() == nil && errors.As(err, &exit) && strings.Contains(strings.ToLower(stderr.String()), "couldn't find remote ref"):
		return FetchResult{}, &Error{Message: fmt.Sprintf("The repository has no branch %q to pull: name an existing branch.", res.Base)}
	case errors.As(err, &exit):
		return FetchResult{}, fetchError(ctx, src, &gitError{args: "fetch", stderr: stderr.String()})
	default:
		return FetchResult{}, fetchError(ctx, src, err)
	}
	out, err := run(ctx, local, repo, "rev-parse", "--verify", ref+"^{commit}")
	if err != nil {
		return FetchResult{}, err
	}
	res.Commit = strings.TrimSpace(out)
	if _, err := run(ctx, local, repo, "bundle", "create", "--quiet", bundle, ref); err != nil {
		return FetchResult{}, err
	}
	return res, nil
}

// fetchError turns a failed fetch into words for the user, as a clone's: a fetch only reads, so
// a refused token is asked to read, not to write.
func fetchError(ctx context.Context, src Source, err error) error {
	var ge *gitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Message: "The forge did not hand over the base branch in time."}
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &ge):
		return cloneError(src, ge.stderr)
	}
	return err
}
