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
