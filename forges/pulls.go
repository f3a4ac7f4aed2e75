package forges

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// PullRequest is a pull request (GitLab: merge request) as doce shows it.
type PullRequest struct {
	Number int64  // its number in the repository (GitLab: the iid)
	URL    string // its web page
}

// RefusedError is a pull request the forge would not open, with its reason (e.g. no commits
// between the branches, or a base branch that does not exist): a person has to act.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string {
	if e.Reason == "" {
		return "The forge refused to open the pull request."
	}
	return "The forge refused to open the pull request: " + e.Reason
}

// refused keeps a forge's reason short and printable: it is shown to the user.
func refused(reason string) *RefusedError {
	reason = strings.Join(strings.Fields(strings.ToValidUTF8(reason, "")), " ")
	if utf8.RuneCountInString(reason) > 300 {
		reason = string([]rune(reason)[:300]) + "…"
	}
	return &RefusedError{Reason: reason}
}

// RepoPath is the repository a clone URL names on the forge at baseURL (as Normalize returned
// it): "owner/name" (GitLab: "group/subgroup/name"), without .git.
func RepoPath(baseURL, cloneURL string) (string, error) {
	b, err1 := url.Parse(baseURL)
	u, err2 := url.Parse(cloneURL)
	if err1 != nil || err2 != nil || !strings.EqualFold(b.Host, u.Host) || b.Scheme != u.Scheme {
		return "", fmt.Errorf("forges: %s is not on the forge at %s", cloneURL, baseURL)
	}
	rest, ok := strings.CutPrefix(u.Path, strings.TrimRight(b.Path, "/")+"/")
	rest = strings.TrimSuffix(strings.Trim(rest, "/"), ".git")
	if !ok || strings.Count(rest, "/") < 1 || strings.Contains(rest, "//") {
		return "", fmt.Errorf("forges: %s names no repository on the forge at %s", cloneURL, baseURL)
	}
	return rest, nil
}

// ownerName splits "owner/name" (GitHub and Gitea have no deeper paths).
func ownerName(repo string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("forges: %q is not owner/name", repo)
	}
	return owner, name, nil
}
