package workspace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNotRunning: the project's workspace container is stopped.
var ErrNotRunning = errors.New("workspace: the workspace is not running")

// ErrBundleTooLarge: the workspace's repository is larger than a push may carry.
var ErrBundleTooLarge = errors.New("workspace: the repository is larger than the push limit")

// ExitError is a command in the workspace that ended with a non-zero status; Stderr is the
// start of what it said (the workspace's own words: show them as such).
type ExitError struct {
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("workspace: the command exited with %d: %s", e.Code, strings.TrimSpace(e.Stderr))
}

// Author is who a commit made for the user is by.
type Author struct{ Name, Email string }

// gitNoHooks is the configuration every git doce runs in a workspace gets: none of the
// repository's hooks run, nothing is signed (no key is there to sign with).
var gitNoHooks = []string{"GIT_CONFIG_COUNT=2",
	"GIT_CONFIG_KEY_0=core.hooksPath", "GIT_CONFIG_VALUE_0=/dev/null",
	"GIT_CONFIG_KEY_1=commit.gpgSign", "GIT_CONFIG_VALUE_1=false"}

// Uncommitted says whether a path of the workspace is one of doce's own files (its
// configuration), which no commit doce makes for the user ever holds.
func Uncommitted(path string) bool { return path == configFile || path == agentsFile }

// commitScript stages everything but doce's own opencode.json and AGENTS.md (the workspace's
// configuration, not the project's work) and commits it, unless nothing is staged.
const commitScript = `git add -A -- . ':(top,exclude)` + configFile + `' ':(top,exclude)` + agentsFile + `' && ` +
	`if git diff --cached --quiet; then echo nothing; else git commit --quiet --no-verify -m "$DOCE_COMMIT_MESSAGE" && echo committed; fi`

// runFunc runs cmd in a project's workspace as the agent, in /workspace, with env, stdin (when
// set) on its standard input and its output to stdout; a non-zero exit is an *ExitError. Each
// backend has its own (Docker's exec, the Kubernetes exec subresource); the git work below is
// written once over it.
type runFunc func(ctx context.Context, env, cmd []string, stdin io.Reader, stdout io.Writer) error

// Commit commits every change in the project's repository as the agent, by author, with no
// hook run. committed is false when there was nothing to commit.
func (m *Manager) Commit(ctx context.Context, projectID string, author Author, message string) (committed bool, err error) {
	return commit(ctx, m.runIn(projectID), author, message)
}

// Bundle writes a git bundle of the workspace repository's HEAD (its whole history) to w. A
// bundle over max bytes stops with ErrBundleTooLarge.
func (m *Manager) Bundle(ctx context.Context, projectID string, w io.Writer, max int64) error {
	return bundle(ctx, m.runIn(projectID), w, max)
}

// Merge brings the bundle read from r into the project's repository and merges its branch base
// into HEAD as author, with no hook run. On conflicts the merge is aborted and they are named.
func (m *Manager) Merge(ctx context.Context, projectID string, r io.Reader, base string, author Author, message string) (MergeResult, error) {
	return merge(ctx, m.runIn(projectID), r, base, author, message)
}

func (m *Manager) runIn(projectID string) runFunc {
	return func(ctx context.Context, env, cmd []string, stdin io.Reader, stdout io.Writer) error {
		return m.exec(ctx, projectID, env, cmd, stdin, stdout)
	}
}

func commit(ctx context.Context, run runFunc, author Author, message string) (committed bool, err error) {
	env := append([]string{"DOCE_COMMIT_MESSAGE=" + message,
		"GIT_AUTHOR_NAME=" + author.Name, "GIT_AUTHOR_EMAIL=" + author.Email,
		"GIT_COMMITTER_NAME=" + author.Name, "GIT_COMMITTER_EMAIL=" + author.Email}, gitNoHooks...)
	var out strings.Builder
	if err := run(ctx, env, []string{"sh", "-c", commitScript}, nil, &limitWriter{w: &out, max: 4 << 10}); err != nil {
		return false, err
	}
	return strings.TrimSpace(out.String()) == "committed", nil
}

func bundle(ctx context.Context, run runFunc, w io.Writer, max int64) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lw := &limitWriter{w: w, max: max, over: cancel}
	err := run(ctx, gitNoHooks, []string{"git", "bundle", "create", "--quiet", "-", "HEAD"}, nil, lw)
	if lw.exceeded {
		return ErrBundleTooLarge
	}
	return err
}

// mergeScript keeps the bundle on its stdin in the repository's .git, fetches DOCE_BASE from it
// to refs/doce/base and merges that into HEAD. Conflicts abort the merge, leaving the tree as it
// was, and are told as "conflict" and the files; a merge is told as "merged" and the commits
// HEAD is ahead of and behind the base.
const mergeScript = `set -e
f="$(git rev-parse --absolute-git-dir)/doce-pull.bundle"
trap 'rm -f "$f"' EXIT
cat > "$f"
git fetch --quiet --no-tags "$f" "+refs/heads/$DOCE_BASE:refs/doce/base"
if ! git merge --quiet --no-edit --no-verify -m "$DOCE_MERGE_MESSAGE" refs/doce/base >/dev/null; then
  files="$(git diff --name-only --diff-filter=U)"
  git merge --abort 2>/dev/null || true
  [ -n "$files" ] || exit 1
  echo conflict; echo "$files"; exit 0
fi
echo merged; git rev-list --left-right --count HEAD...refs/doce/base`

// MergeResult is what Merge did.
type MergeResult struct {
	Conflicts     []string // the files both sides changed; the merge was aborted
	Ahead, Behind int      // HEAD against the base once merged
}

func merge(ctx context.Context, run runFunc, r io.Reader, base string, author Author, message string) (MergeResult, error) {
	env := append([]string{"DOCE_BASE=" + base, "DOCE_MERGE_MESSAGE=" + message, "GIT_MERGE_AUTOEDIT=no",
		"GIT_AUTHOR_NAME=" + author.Name, "GIT_AUTHOR_EMAIL=" + author.Email,
		"GIT_COMMITTER_NAME=" + author.Name, "GIT_COMMITTER_EMAIL=" + author.Email}, gitNoHooks...)
	var out strings.Builder
	if err := run(ctx, env, []string{"sh", "-c", mergeScript}, r, &limitWriter{w: &out, max: 64 << 10}); err != nil {
		return MergeResult{}, err
	}
	return parseMerge(out.String())
}

// parseMerge reads mergeScript's output.
func parseMerge(out string) (MergeResult, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	switch {
	case lines[0] == "conflict" && len(lines) > 1:
		return MergeResult{Conflicts: lines[1:]}, nil
	case lines[0] == "merged" && len(lines) == 2:
		var res MergeResult
		if _, err := fmt.Sscanf(lines[1], "%d %d", &res.Ahead, &res.Behind); err == nil {
			return res, nil
		}
	}
	return MergeResult{}, fmt.Errorf("workspace: the merge said what doce cannot read: %.200q", out)
}

// exec runs cmd in the project's workspace as the agent, in /workspace, with env, stdin (when
// set) on its standard input and its output to stdout; a non-zero exit is an *ExitError.
func (m *Manager) exec(ctx context.Context, projectID string, env, cmd []string, stdin io.Reader, stdout io.Writer) error {
	name := containerName(projectID)
	created, err := m.docker.ContainerExecCreate(ctx, name, container.ExecOptions{
		User: strconv.Itoa(AgentUID) + ":" + strconv.Itoa(AgentUID), WorkingDir: workspaceDir,
		Env: env, Cmd: cmd, AttachStdin: stdin != nil, AttachStdout: true, AttachStderr: true,
	})
	switch {
	case cerrdefs.IsNotFound(err):
		return ErrNoWorkspace
	case cerrdefs.IsConflict(err):
		return ErrNotRunning // Docker's answer for an exec in a stopped container
	case err != nil:
		return fmt.Errorf("workspace: unable to run %s in the workspace: %w", cmd[0], err)
	}
	att, err := m.docker.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("workspace: unable to attach to %s in the workspace: %w", cmd[0], err)
	}
	defer att.Close()
	// The connection is closed when ctx ends, so a copy stopped by the size limit returns.
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	if stdin != nil {
		go func() {
			// A command that stops reading ends the copy with an error: its exit status tells.
			_, _ = io.Copy(att.Conn, stdin)
			_ = att.CloseWrite()
		}()
	}
	var stderr strings.Builder
	if _, err := stdcopy.StdCopy(stdout, &limitWriter{w: &stderr, max: 8 << 10}, att.Reader); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("workspace: unable to read %s's output: %w", cmd[0], err)
	}
	insp, err := m.docker.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return fmt.Errorf("workspace: unable to read %s's exit status: %w", cmd[0], err)
	}
	if insp.Running {
		return fmt.Errorf("workspace: %s still runs after its output ended", cmd[0])
	}
	if insp.ExitCode != 0 {
		return &ExitError{Code: insp.ExitCode, Stderr: stderr.String()}
	}
	return nil
}

// limitWriter passes on at most max bytes; past that it keeps nothing more, says so, and
// calls over (when set) once. A writer of text for people keeps the start silently.
type limitWriter struct {
	w        io.Writer
	max, n   int64
	exceeded bool
	over     func()
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.exceeded {
		return len(p), nil
	}
	if rest := l.max - l.n; int64(len(p)) > rest {
		if rest > 0 {
			if _, err := l.w.Write(p[:rest]); err != nil {
				return 0, err
			}
		}
		l.n, l.exceeded = l.max, true
		if l.over != nil {
			l.over()
		}
		return len(p), nil
	}
	l.n += int64(len(p))
	if _, err := l.w.Write(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
