// Package forges talks to the git forges users connect (GitHub and GitHub Enterprise, GitLab
// and self-managed GitLab, Gitea and Forgejo) through one small interface, with each forge's
// own Go client where a well-kept one exists (go-github, Gitea's SDK) and a few plain calls
// for GitLab. Every request goes through the HTTP client the caller gives: doce's outbound
// policy in production, so a forge on a private address needs DOCE_ALLOWED_PRIVATE_HOSTS.
//
// A token is only ever put on the wire to the forge it was given for; it never appears in an
// error this package returns.
package forges

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/doce-dev/doce/outbound"
)

// Kinds of forge.
const (
	GitHub = "github"
	GitLab = "gitlab"
	Gitea  = "gitea" // Forgejo speaks the same API
)

// Kinds lists every kind, in the order pages offer them.
var Kinds = []string{GitHub, GitLab, Gitea}

// Name is a kind as people write it.
func Name(kind string) string {
	switch kind {
	case GitHub:
		return "GitHub"
	case GitLab:
		return "GitLab"
	case Gitea:
		return "Gitea"
	}
	return kind
}

// publicURLs are the hosted forges a kind means when no URL is given.
var publicURLs = map[string]string{
	GitHub: "https://github.com",
	GitLab: "https://gitlab.com",
}

// Account is the forge account a token belongs to.
type Account struct {
	Login string // the user name on the forge
	Name  string // the full name, when the forge has one
}

// Forge is what doce asks of a forge; every kind answers the same way.
type Forge interface {
	// Me returns the account the token signs in as: the check that a token works.
	Me(ctx context.Context) (Account, error)
	// FindPullRequest returns the open pull request (GitLab: merge request) of branch head
	// into base on repo, nil when there is none.
	FindPullRequest(ctx context.Context, repo, head, base string) (*PullRequest, error)
	// OpenPullRequest opens a pull request of branch head into base on repo. Both branches
	// are repo's own.
	OpenPullRequest(ctx context.Context, repo, head, base, title, body string) (PullRequest, error)
}

// Errors a Forge returns besides transport errors (which the outbound policy's refusal is
// one of: see outbound.Refused).
var (
	// ErrUnauthorized: the forge refused the token (401, or 403 without the needed scope).
	ErrUnauthorized = errors.New("forges: the forge refused the token")
	// ErrNotForge: something answered at the URL, but not this kind of forge's API.
	ErrNotForge = errors.New("forges: no forge API of this kind at that address")
	// ErrNoRepository: the repository is not there, or the token may not see it.
	ErrNoRepository = errors.New("forges: no such repository, or the token may not see it")
)

// FieldError is a problem with one field of what the user gave, in words they can act on.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Normalize checks kind and the forge's web address and returns the address doce keeps for
// the connection: scheme and host (and a path, for a forge served under one), without a
// trailing slash. An empty address means the hosted forge (github.com, gitlab.com); Gitea has
// none and needs one.
func Normalize(kind, raw string) (string, error) {
	if !isKind(kind) {
		return "", &FieldError{"kind", "Pick a forge: github, gitlab or gitea."}
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		if u, ok := publicURLs[kind]; ok {
			return u, nil
		}
		return "", &FieldError{"baseURL", "Enter your " + Name(kind) + "'s address, e.g. https://git.example.com."}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 {
		return "", &FieldError{"baseURL", "That is not an http(s) address. Use the address you open the forge at, e.g. https://git.example.com."}
	}
	if u.User != nil {
		return "", &FieldError{"baseURL", "Put the token in the token field, not in the address."}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", &FieldError{"baseURL", "Give the forge's address alone, without ? or # parts."}
	}
	u.Host = strings.ToLower(u.Host)
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	// The API hosts of the hosted forges mean the forges themselves.
	switch {
	case kind == GitHub && (u.Host == "github.com" || u.Host == "api.github.com" || u.Host == "www.github.com") && u.Path == "":
		return publicURLs[GitHub], nil
	case kind == GitLab && (u.Host == "gitlab.com" || u.Host == "www.gitlab.com") && u.Path == "":
		return publicURLs[GitLab], nil
	}
	return u.String(), nil
}

// ValidateToken checks a token's form; whether it works is asked of the forge (Check).
func ValidateToken(token string) error {
	switch {
	case token == "":
		return &FieldError{"token", "Enter a personal access token from the forge."}
	case len(token) > 1024:
		return &FieldError{"token", "That token is too long to be a personal access token (over 1024 characters)."}
	case strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0:
		return &FieldError{"token", "A token has no spaces, line breaks or non-ASCII characters: paste it alone."}
	}
	return nil
}

func isKind(kind string) bool {
	for _, k := range Kinds {
		if k == kind {
			return true
		}
	}
	return false
}

// strictClient is used when no client is given: the outbound policy with nothing allowed.
var strictClient = (&outbound.Policy{}).Client(30 * time.Second)

// Open returns a client for the forge of kind at baseURL (as Normalize returned it), signed in
// with token, making every request through hc (nil: the outbound policy, nothing allowed).
func Open(kind, baseURL, token string, hc *http.Client) (Forge, error) {
	if hc == nil {
		hc = strictClient
	}
	// A redirect is taken as the answer, never followed: the clients add the token to every
	// request they make (go-github in its transport, GitLab's PRIVATE-TOKEN header, which
	// net/http does not drop on a redirect to another host), and it must reach this forge only.
	noRedirects := *hc
	noRedirects.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc = &noRedirects
	switch kind {
	case GitHub:
		return openGitHub(baseURL, token, hc)
	case GitLab:
		return &gitLab{api: strings.TrimRight(baseURL, "/") + "/api/v4", token: token, hc: hc}, nil
	case Gitea:
		return openGitea(baseURL, token, hc)
	}
	return nil, fmt.Errorf("forges: unknown kind %q", kind)
}

// unauthorized reports whether an HTTP status is the forge refusing the token.
func unauthorized(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
