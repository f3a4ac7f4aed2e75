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
