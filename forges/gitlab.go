package forges

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// gitLab is GitLab.com or a self-managed GitLab through its REST API (v4). Its official Go
// client is large for the few calls doce makes.
type gitLab struct {
	api, token string
	hc         *http.Client
}

// get fetches path of the API into out.
func (g *gitLab) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.api+path, nil)
	if err != nil {
		return fmt.Errorf("forges: unable to build a GitLab request: %w", err)
	}
	req.Header.Set("PRIVATE-TOKEN", g.token)
	req.Header.Set("Accept", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case unauthorized(resp.StatusCode):
		return ErrUnauthorized
	case resp.StatusCode != http.StatusOK:
		return ErrNotForge
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
		return ErrNotForge
	}
	return nil
}

func (g *gitLab) Me(ctx context.Context) (Account, error) {
	var u struct {
		Username string `json:"username"`
		Name     string `json:"name"`
	}
	if err := g.get(ctx, "/user", &u); err != nil {
		return Account{}, err
	}
	if u.Username == "" {
		return Account{}, ErrNotForge
	}
	return Account{Login: u.Username, Name: u.Name}, nil
}
