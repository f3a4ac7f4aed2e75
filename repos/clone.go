// Package repos is doce's own side of git: it clones a repository a user names into a folder on
// doce's side, under the outbound policy and a time and size limit, with the user's forge token
// only in the environment of that one git process (never on a command line, in a URL or in
// .git/config), so the tree it hands the workspace carries no credential.
package repos

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/doce-dev/doce/outbound"
)

// Source is what to clone.
type Source struct {
	URL string // an http(s) clone URL without credentials (ValidateURL)
	Ref string // a branch or tag; empty: the repository's default branch
	// Username and Token, when Token is set, are sent as HTTP basic credentials: the forge
	// account and its personal access token.
	Username, Token string
}

// Limits bound a clone.
type Limits struct {
	MaxBytes int64         // the clone's size on disk, .git included
	Timeout  time.Duration // the whole clone
}

// Error is a clone that cannot work as asked (a refused token, no such repository or ref, too
// large, too slow, an address the policy refuses): retrying it does not help. Message is fit to
// show the user. TokenRefused says the forge refused the token it was given (401 or 403): the
// connection it came from needs a new one.
type Error struct {
	Message      string
	TokenRefused bool
}

func (e *Error) Error() string { return e.Message }

// ValidateURL checks a clone URL's form and returns it normalized.
func ValidateURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return "", &Error{Message: "Enter the repository's URL, e.g. https://git.example.com/team/app.git."}
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 || u.Path == "" || u.Path == "/":
		return "", &Error{Message: "That is not an http(s) URL of a repository, e.g. https://git.example.com/team/app.git."}
	case u.User != nil:
		return "", &Error{Message: "Leave credentials out of the URL: doce uses the token of your forge connection."}
	case u.RawQuery != "" || u.Fragment != "":
		return "", &Error{Message: "Give the repository's clone URL alone, without ? or # parts."}
	}
	u.Host = strings.ToLower(u.Host)
	return u.String(), nil
}

// Name is a repository's name as its URL says it: the last part of the path, without .git.
func Name(cloneURL string) string {
	u, err := url.Parse(cloneURL)
	if err != nil {
		return "repository"
	}
	name := strings.TrimSuffix(path.Base(strings.TrimRight(u.Path, "/")), ".git")
	if name == "" || name == "." || name == "/" {
		return "repository"
	}
	return name
}

// ValidateRef checks a branch or tag name (empty: the default branch).
func ValidateRef(ref string) error {
	if ref == "" {
		return nil
	}
	bad := len(ref) > 200 || strings.HasPrefix(ref, "-") || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") ||
		strings.HasSuffix(ref, ".lock") || strings.Contains(ref, "..") || strings.Contains(ref, "@{") || strings.Contains(ref, "//") ||
		strings.IndexFunc(ref, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune("~^:?*[\\", r)
		}) >= 0
	if bad {
		return &Error{Message: "That is not a branch or tag name git accepts."}
	}
	return nil
}

// ValidateBranch checks a branch name to push to by git check-ref-format's rules: ValidateRef's,
// and no part that starts with a dot, no name that ends with one, and not HEAD or @.
func ValidateBranch(branch string) error {
	bad := branch == "" || branch == "@" || branch == "HEAD" || strings.HasSuffix(branch, ".") || strings.HasPrefix(branch, "refs/")
	for _, part := range strings.Split(branch, "/") {
		bad = bad || strings.HasPrefix(part, ".")
	}
	if bad || ValidateRef(branch) != nil {
		return &Error{Message: "That is not a branch name git accepts: use letters, digits and - _ . / (e.g. doce/my-change)."}
	}
	return nil
}

// Clone clones src into dir (which must not exist) under policy and lim. progress, when set, is
// told what git reports as it receives the objects and, once the clone is whole, the objects and
// bytes received (git names no bytes for a small clone: then those its objects take on disk).
func Clone(ctx context.Context, policy *outbound.Policy, src Source, dir string, lim Limits, progress func(CloneProgress)) error {
	env, cleanup, err := remoteEnv(ctx, policy, src.URL, src.Username, src.Token)
	if err != nil {
		return err
	}
	defer cleanup()
	args := []string{"clone", "--single-branch", "--progress"}
	if src.Ref != "" {
		args = append(args, "--branch", src.Ref)
	}
	args = append(args, "--", src.URL, dir)

	cctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "git", args...)
	cmd.Env = env
	var stderr strings.Builder
	pw := &progressWriter{keep: &limitedWriter{w: &stderr, n: 8 << 10}, report: progress}
	cmd.Stderr = pw
	tooLarge, err := runWatched(cmd, cancel, dir, lim.MaxBytes)
	switch {
	case tooLarge:
		return &Error{Message: fmt.Sprintf("The repository is larger than the import limit of %d MB.", lim.MaxBytes>>20)}
	case errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		return &Error{Message: fmt.Sprintf("Cloning the repository took longer than %s.", lim.Timeout)}
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return cloneError(src, stderr.String())
		}
		return err
	}
	if progress != nil && pw.last.TotalObjects > 0 {
		if pw.last.Bytes == 0 {
			pw.last.Bytes = sizeOf(filepath.Join(dir, ".git", "objects"))
		}
		progress(pw.last)
	}
	return nil
}

// runWatched runs cmd, made with a context cancel ends, and every half second measures dir: past
// max it cancels cmd. tooLarge says dir went past max, what arrived after the last tick
// included.
func runWatched(cmd *exec.Cmd, cancel func(), dir string, max int64) (tooLarge bool, err error) {
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("repos: unable to run git: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return tooLarge || sizeOf(dir) > max, err
		case <-tick.C:
			if n := sizeOf(dir); n > max && !tooLarge {
				tooLarge = true
				cancel()
			}
		}
	}
}

// remoteEnv is the environment of one git process that talks to the remote at rawURL under
// policy: no configuration but this, with the token (when set) only here, as an HTTP basic
// header. cleanup removes the empty home it gives git.
func remoteEnv(ctx context.Context, policy *outbound.Policy, rawURL, username, token string) (env []string, cleanup func(), err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, &Error{Message: "That is not a repository URL."}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	addr, err := policy.Pin(ctx, u.Hostname())
	if outbound.Refused(err) {
		return nil, nil, &Error{Message: outbound.RefusedMessage}
	} else if err != nil {
		return nil, nil, err // a name that does not resolve now may later
	}
	// git runs with no configuration but this: no system or user files, no prompts, no proxy,
	// http(s) only, no redirect to elsewhere, every object checked, no hook, and the one
	// address the policy allowed pinned for the host, so DNS cannot move it.
	config := [][2]string{
		{"http.curloptResolve", u.Hostname() + ":" + port + ":" + bracket(addr)},
		{"http.followRedirects", "false"},
		{"protocol.allow", "never"},
		{"protocol.http.allow", "always"},
		{"protocol.https.allow", "always"},
		{"http.lowSpeedLimit", "1024"},
		{"http.lowSpeedTime", "60"},
	}
	if token != "" {
		basic := base64.StdEncoding.EncodeToString([]byte(username + ":" + token))
		config = append(config, [2]string{"http.extraHeader", "Authorization: Basic " + basic})
	}
	env, cleanup, err = localEnv(config...)
	return env, cleanup, err
}

// localEnv is the environment of a git process that reads no configuration but config and
// doce's own: every object checked, no hooks, no credential helper, no prompts.
func localEnv(config ...[2]string) (env []string, cleanup func(), err error) {
	home, err := os.MkdirTemp("", "doce-git-home-")
	if err != nil {
		return nil, nil, fmt.Errorf("repos: unable to make git a home: %w", err)
	}
	config = append([][2]string{
		{"transfer.fsckObjects", "true"},
		{"fetch.fsckObjects", "true"},
		{"core.hooksPath", "/dev/null"},
		{"credential.helper", ""},
	}, config...)
	env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LC_ALL=C", "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_COUNT=" + strconv.Itoa(len(config))}
	for i, kv := range config {
		env = append(env, fmt.Sprintf("GIT_CONFIG_KEY_%d=%s", i, kv[0]), fmt.Sprintf("GIT_CONFIG_VALUE_%d=%s", i, kv[1]))
	}
	return env, func() { os.RemoveAll(home) }, nil
}

// scratchRepo makes an empty bare repository of doce's own, named name in a fresh directory
// prefixed by prefix, with the local git environment (localEnv) to work in it. cleanup removes
// both.
func scratchRepo(ctx context.Context, prefix, name string) (repo string, local []string, cleanup func(), err error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, nil, fmt.Errorf("repos: unable to make a scratch repository: %w", err)
	}
	local, cleanHome, err := localEnv()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	cleanup = func() { cleanHome(); os.RemoveAll(dir) }
	repo = filepath.Join(dir, name)
	if _, err := run(ctx, local, "", "init", "--quiet", "--bare", repo); err != nil {
		cleanup()
		return "", nil, nil, err
	}
	return repo, local, cleanup, nil
}

// cloneError turns what git said into words for the user; what it cannot place is an ordinary
// error, retried.
func cloneError(src Source, stderr string) error {
	s := strings.ToLower(stderr)
	switch {
	case strings.Contains(s, "remote branch") && strings.Contains(s, "not found"):
		return &Error{Message: fmt.Sprintf("The repository has no branch or tag %q.", src.Ref)}
	case strings.Contains(s, "authentication failed") || strings.Contains(s, "could not read username") ||
		strings.Contains(s, "returned error: 401") || strings.Contains(s, "returned error: 403"):
		if src.Token == "" {
			return &Error{Message: "The repository needs a token: connect its forge under Forges, then retry."}
		}
		return &Error{Message: "The forge refused the token of your connection to it: connect it again with a token that may read this repository.", TokenRefused: true}
	case strings.Contains(s, "returned error: 404") || strings.Contains(s, "not found") || strings.Contains(s, "not a git repository") ||
		strings.Contains(s, "repository") && strings.Contains(s, "does not exist"):
		return &Error{Message: "No repository answered at " + src.URL + " (or your token may not see it)."}
	case strings.Contains(s, "returned error: 30") || strings.Contains(s, "redirect"):
		return &Error{Message: "That address redirects elsewhere: give the repository's own clone URL."}
	case strings.Contains(s, "fsck") || strings.Contains(s, "object") && strings.Contains(s, "corrupt"):
		return &Error{Message: "The repository sent objects that fail git's checks; doce does not import it."}
	}
	return fmt.Errorf("repos: git clone failed: %s", strings.TrimSpace(stderr))
}

func bracket(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// sizeOf is the bytes of the files under dir (0 while it does not exist).
func sizeOf(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// limitedWriter keeps the first n bytes written to it.
type limitedWriter struct {
	w interface{ WriteString(string) (int, error) }
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.WriteString(string(p[:k]))
		l.n -= k
	}
	return len(p), nil
}
