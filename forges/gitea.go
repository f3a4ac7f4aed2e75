package forges

import (
	"context"
	"fmt"
	"net/http"

	"code.gitea.io/sdk/gitea"
)

// giteaForge is Gitea or Forgejo through Gitea's SDK.
type giteaForge struct {
	baseURL, token string
	hc             *http.Client
}

func openGitea(baseURL, token string, hc *http.Client) (*giteaForge, error) {
	return &giteaForge{baseURL: baseURL, token: token, hc: hc}, nil
}

// client is an SDK client for one call: the SDK takes its context at construction. Its server
// version check is skipped (SetGiteaVersion("")): it costs a request and refuses Forgejo, whose
// versions are numbered apart from Gitea's.
func (g *giteaForge) client(ctx context.Context) (*gitea.Client, error) {
	c, err := gitea.NewClient(g.baseURL, gitea.SetHTTPClient(g.hc), gitea.SetToken(g.token),
		gitea.SetContext(ctx), gitea.SetGiteaVersion(""))
	if err != nil {
		return nil, fmt.Errorf("forges: unable to make a Gitea client: %w", err)
	}
	return c, nil
}

func (g *giteaForge) Me(ctx context.Context) (Account, error) {
	c, err := g.client(ctx)
	if err != nil {
		return Account{}, err
	}
	u, resp, err := c.GetMyUserInfo()
	if err != nil {
		return Account{}, giteaError(resp, err)
	}
	if u.UserName == "" {
		return Account{}, ErrNotForge
	}
	return Account{Login: u.UserName, Name: u.FullName}, nil
}

// giteaError sorts the SDK's error as githubError does go-github's.
func giteaError(resp *gitea.Response, err error) error {
	switch {
	case resp != nil && unauthorized(resp.StatusCode):
		return ErrUnauthorized
	case resp != nil:
		return ErrNotForge
	}
	return err
}

func (g *giteaForge) FindPullRequest(ctx context.Context, repo, head, base string) (*PullRequest, error) {
	owner, name, err := ownerName(repo)
	if err != nil {
		return nil, err
	}
	c, err := g.client(ctx)
	if err != nil {
		return nil, err
	}
	// The newest pull request of head into base, whatever its state.
	pr, resp, err := c.GetPullRequestByBaseHead(owner, name, base, head)
	switch {
	case resp != nil && resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case err != nil:
		return nil, giteaPullError(resp, err)
	case pr.State != gitea.StateOpen || pr.HasMerged:
		return nil, nil
	}
	return &PullRequest{Number: pr.Index, URL: pr.HTMLURL}, nil
}

func (g *giteaForge) OpenPullRequest(ctx context.Context, repo, head, base, title, body string) (PullRequest, error) {
	owner, name, err := ownerName(repo)
	if err != nil {
		return PullRequest{}, err
	}
	c, err := g.client(ctx)
	if err != nil {
		return PullRequest{}, err
	}
	pr, resp, err := c.CreatePullRequest(owner, name, gitea.CreatePullRequestOption{Head: head, Base: base, Title: title, Body: body})
	if err != nil {
		return PullRequest{}, giteaPullError(resp, err)
	}
	return PullRequest{Number: pr.Index, URL: pr.HTMLURL}, nil
}

// giteaPullError sorts the SDK's error of a pull request call; its message is the forge's
// reason, which the SDK takes from the answer's body.
func giteaPullError(resp *gitea.Response, err error) error {
	switch {
	case resp == nil:
		return err
	case unauthorized(resp.StatusCode):
		return ErrUnauthorized
	case resp.StatusCode == http.StatusNotFound:
		return ErrNoRepository
	case resp.StatusCode == http.StatusUnprocessableEntity || resp.StatusCode == http.StatusConflict:
		return refused(err.Error())
	}
	return fmt.Errorf("forges: Gitea answered %d", resp.StatusCode)
}
