package forges

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// gitLab is GitLab.com or a self-managed GitLab through its REST API (v4). Its official Go
// client is large for the few calls doce makes.
type gitLab struct {
	api, token string
	hc         *http.Client
}

// call sends in (when not nil) as JSON to path of the API and decodes a 2xx answer into out.
// Any other answer is an *apiStatus carrying the status and the body's message.
func (g *gitLab) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.api+path, body)
	if err != nil {
		return fmt.Errorf("forges: unable to build a GitLab request: %w", err)
	}
	req.Header.Set("PRIVATE-TOKEN", g.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct {
			Message any `json:"message"` // a string, a list or an object of lists
		}
		st := &apiStatus{code: resp.StatusCode}
		if json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e) == nil && e.Message != nil {
			st.message = fmt.Sprint(e.Message)
		}
		return st
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(out); err != nil {
		return ErrNotForge
	}
	return nil
}

// apiStatus is a GitLab answer other than 2xx.
type apiStatus struct {
	code    int
	message string
}

func (e *apiStatus) Error() string { return fmt.Sprintf("forges: GitLab answered %d", e.code) }

func (g *gitLab) Me(ctx context.Context) (Account, error) {
	var u struct {
		Username string `json:"username"`
		Name     string `json:"name"`
	}
	err := g.call(ctx, http.MethodGet, "/user", nil, &u)
	var st *apiStatus
	if errors.As(err, &st) {
		if unauthorized(st.code) {
			return Account{}, ErrUnauthorized
		}
		return Account{}, ErrNotForge
	} else if err != nil {
		return Account{}, err
	}
	if u.Username == "" {
		return Account{}, ErrNotForge
	}
	return Account{Login: u.Username, Name: u.Name}, nil
}

// mergeRequest is the part of GitLab's merge request doce reads.
type mergeRequest struct {
	IID    int64  `json:"iid"`
	WebURL string `json:"web_url"`
}

func (g *gitLab) FindPullRequest(ctx context.Context, repo, head, base string) (*PullRequest, error) {
	var mrs []mergeRequest
	q := url.Values{"state": {"opened"}, "source_branch": {head}, "target_branch": {base}, "per_page": {"1"}}
	if err := g.call(ctx, http.MethodGet, "/projects/"+url.PathEscape(repo)+"/merge_requests?"+q.Encode(), nil, &mrs); err != nil {
		return nil, gitlabPullError(err)
	}
	if len(mrs) == 0 {
		return nil, nil
	}
	return &PullRequest{Number: mrs[0].IID, URL: mrs[0].WebURL}, nil
}

func (g *gitLab) OpenPullRequest(ctx context.Context, repo, head, base, title, body string) (PullRequest, error) {
	var mr mergeRequest
	in := map[string]string{"source_branch": head, "target_branch": base, "title": title, "description": body}
	if err := g.call(ctx, http.MethodPost, "/projects/"+url.PathEscape(repo)+"/merge_requests", in, &mr); err != nil {
		return PullRequest{}, gitlabPullError(err)
	}
	return PullRequest{Number: mr.IID, URL: mr.WebURL}, nil
}

// gitlabPullError sorts a merge request call's error: GitLab answers 404 for a project the
// token may not see, 409 for a merge request of the branches that is open already and 422 for
// one it refuses otherwise.
func gitlabPullError(err error) error {
	var st *apiStatus
	ok := errors.As(err, &st)
	switch {
	case !ok:
		return err
	case unauthorized(st.code):
		return ErrUnauthorized
	case st.code == http.StatusNotFound:
		return ErrNoRepository
	case st.code == http.StatusConflict || st.code == http.StatusUnprocessableEntity || st.code == http.StatusBadRequest:
		return refused(st.message)
	}
	return err
}
