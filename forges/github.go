package forges

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-github/v89/github"
)

// gitHub is GitHub or GitHub Enterprise Server through go-github.
type gitHub struct{ c *github.Client }

func openGitHub(baseURL, token string, hc *http.Client) (*gitHub, error) {
	opts := []github.ClientOptionsFunc{github.WithHTTPClient(hc), github.WithAuthToken(token)}
	if baseURL != publicURLs[GitHub] {
		// GitHub Enterprise Server answers its API under /api/v3 of its own address.
		base := strings.TrimRight(baseURL, "/") + "/"
		opts = append(opts, github.WithEnterpriseURLs(base, base))
	}
	c, err := github.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("forges: unable to make a GitHub client: %w", err)
	}
	return &gitHub{c: c}, nil
}

func (g *gitHub) Me(ctx context.Context) (Account, error) {
	u, resp, err := g.c.Users.Get(ctx, "")
	if err != nil {
		return Account{}, githubError(resp, err)
	}
	if u.GetLogin() == "" {
		return Account{}, ErrNotForge
	}
	return Account{Login: u.GetLogin(), Name: u.GetName()}, nil
}

// githubError sorts go-github's error: a refused token, an answer that is not GitHub's API, or
// the transport's error (which carries no token: go-github sends it in a header).
func githubError(resp *github.Response, err error) error {
	var er *github.ErrorResponse
	switch {
	case resp != nil && unauthorized(resp.StatusCode):
		return ErrUnauthorized
	case errors.As(err, &er), resp != nil:
		return ErrNotForge
	}
	return err
}

func (g *gitHub) FindPullRequest(ctx context.Context, repo, head, base string) (*PullRequest, error) {
	owner, name, err := ownerName(repo)
	if err != nil {
		return nil, err
	}
	prs, resp, err := g.c.PullRequests.List(ctx, owner, name, &github.PullRequestListOptions{
		State: "open", Head: owner + ":" + head, Base: base, ListOptions: github.ListOptions{PerPage: 1}})
	if err != nil {
		return nil, githubPullError(resp, err)
	}
	if len(prs) == 0 {
		return nil, nil
	}
	return &PullRequest{Number: int64(prs[0].GetNumber()), URL: prs[0].GetHTMLURL()}, nil
}

func (g *gitHub) OpenPullRequest(ctx context.Context, repo, head, base, title, body string) (PullRequest, error) {
	owner, name, err := ownerName(repo)
	if err != nil {
		return PullRequest{}, err
	}
	pr, resp, err := g.c.PullRequests.Create(ctx, owner, name, &github.NewPullRequest{
		Title: github.Ptr(title), Head: github.Ptr(head), Base: github.Ptr(base), Body: github.Ptr(body)})
	if err != nil {
		return PullRequest{}, githubPullError(resp, err)
	}
	return PullRequest{Number: int64(pr.GetNumber()), URL: pr.GetHTMLURL()}, nil
}

// githubPullError sorts go-github's error of a pull request call. GitHub answers 404 for a
// repository the token may not see, and 422 with its reasons for a pull request it refuses.
func githubPullError(resp *github.Response, err error) error {
	var er *github.ErrorResponse
	switch {
	case resp == nil:
		return err
	case unauthorized(resp.StatusCode):
		return ErrUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		return ErrNoRepository
	case resp.StatusCode == http.StatusUnprocessableEntity && errors.As(err, &er):
		reason := er.Message
		for _, e := range er.Errors {
			if e.Message != "" {
				reason += ": " + e.Message
			}
		}
		return refused(reason)
	}
	return fmt.Errorf("forges: GitHub answered %d", resp.StatusCode)
}
