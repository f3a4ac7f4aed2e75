// Package opencode is a typed client for the parts of the OpenCode server API doce uses.
package opencode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to one OpenCode server. Every request carries the server's password (HTTP basic,
// user "opencode"), and every call is bounded by its context.
type Client struct {
	baseURL  string
	password string
	http     *http.Client
}

// New returns a client for the server at baseURL (e.g. http://127.0.0.1:32768).
func New(baseURL, password string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{baseURL: baseURL, password: password, http: hc}
}

// StatusError is a non-2xx answer from OpenCode. Body is cut short and never holds what we sent.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("opencode: %s %s: %d %s", e.Method, e.Path, e.Code, e.Body)
}

// IsClientError reports whether err is OpenCode refusing the request (4xx): retrying the same
// request will not help.
func IsClientError(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500
}

// maxAnswer bounds what doce reads of any OpenCode answer: a workspace is hostile code and may
// answer without end. The largest answer doce asks for, the model catalog, is ~6.4 MB.
const maxAnswer = 32 << 20

// ErrTooLarge is an answer longer than doce reads.
var ErrTooLarge = errors.New("opencode: the answer is larger than doce reads")

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	lr := &io.LimitedReader{R: resp.Body, N: maxAnswer + 1}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		if lr.N == 0 {
			return fmt.Errorf("%w: %s %s", ErrTooLarge, method, path)
		}
		return fmt.Errorf("opencode: unable to decode %s answer: %w", path, err)
	}
	return nil
}

// send makes a request and returns the answer when it is a 2xx; the caller closes its body.
func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("opencode: unable to encode %s body: %w", path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, rd)
	if err != nil {
		return nil, fmt.Errorf("opencode: unable to build request: %w", err)
	}
	req.SetBasicAuth("opencode", c.password)
	if method == http.MethodPut || method == http.MethodDelete {
		// Idempotent: net/http may resend it on a kept-alive connection the server closed
		// meanwhile. A nil value marks it so without sending the header.
		req.Header["Idempotency-Key"] = nil
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the URL, which holds no secret; keep it for the operator.
		return nil, fmt.Errorf("opencode: %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(b)}
	}
	return resp, nil
}

// Health is GET /global/health.
type Health struct {
	Healthy bool   `json:"healthy"`
	Version string `json:"version"`
}

// Health asks whether the server is up. OpenCode can hang a request made while it starts, so the
// call is bounded by timeout on top of ctx.
func (c *Client) Health(ctx context.Context, timeout time.Duration) (Health, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var h Health
	err := c.do(ctx, http.MethodGet, "/global/health", nil, &h)
	return h, err
}

// Auth is a credential as OpenCode's PUT /auth/{providerID} takes it. Exactly one shape is used
// per type; it carries secrets, so it is never logged and never leaves the activity building it.
type Auth struct {
	Type          string `json:"type"`                    // api | oauth | wellknown
	Key           string `json:"key,omitempty"`           // api key; wellknown: the URL
	Token         string `json:"token,omitempty"`         // wellknown
	Refresh       string `json:"refresh,omitempty"`       // oauth
	Access        string `json:"access,omitempty"`        // oauth
	Expires       *int64 `json:"expires,omitempty"`       // oauth, unix ms; 0 means never
	EnterpriseURL string `json:"enterpriseUrl,omitempty"` // oauth
	AccountID     string `json:"accountId,omitempty"`     // oauth
}

// String keeps secrets out of any accidental %v.
func (a Auth) String() string { return "opencode.Auth{type:" + a.Type + "}" }

// SetAuth stores a credential for providerID in the server's auth.json.
func (c *Client) SetAuth(ctx context.Context, providerID string, a Auth) error {
	var ok bool
	if err := c.do(ctx, http.MethodPut, "/auth/"+authPath(providerID), a, &ok); err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("opencode: PUT /auth/%s answered false", providerID)
	}
	return nil
}

// Model picks the provider and model a prompt runs on.
type Model struct {
	ProviderID string `json:"providerID"`
	ModelID    string `json:"modelID"`
}

// PromptAsync sends text to a session and returns once OpenCode accepted it (204); the answer
// streams into the session.
func (c *Client) PromptAsync(ctx context.Context, sessionID string, model Model, text string) error {
	body := map[string]any{
		"model": model,
		"parts": []map[string]string{{"type": "text", "text": text}},
	}
	return c.do(ctx, http.MethodPost, "/session/"+url.PathEscape(sessionID)+"/prompt_async", body, nil)
}

// Busy reports whether any session is working (busy or retrying).
func (c *Client) Busy(ctx context.Context) (bool, error) {
	st, err := c.SessionStatuses(ctx)
	if err != nil {
		return false, err
	}
	for _, s := range st {
		if s.Type != "idle" {
			return true, nil
		}
	}
	return false, nil
}

// Config is the part of the server's loaded configuration doce checks.
type Config struct {
	Model string `json:"model"`
}

// Config returns the configuration the server's instance has loaded. It can name providers'
// options: read it server-side only.
func (c *Client) Config(ctx context.Context) (Config, error) {
	var cfg Config
	err := c.do(ctx, http.MethodGet, "/config", nil, &cfg)
	return cfg, err
}

// preloadPaths are requests that make an OpenCode 1.18.33 instance load, ahead of its first
// prompt, what that prompt would otherwise load and what depends on no credential: the
// instance and its configuration (GET /config), plugins and commands (GET /command), the tool
// registry (GET /experimental/tool/ids), and the file watcher, project copies and location
// services (GET /find/file). The providers are left out on purpose: their state takes the
// stored credentials when it loads, and a state loaded before PUT /auth calls the LLM with no
// key (measured).
var preloadPaths = []string{"/config", "/command", "/experimental/tool/ids", "/find/file?query=AGENTS.md&limit=1"}

// Preload has the server load its instance, up to the providers (see preloadPaths).
func (c *Client) Preload(ctx context.Context) error {
	for _, p := range preloadPaths {
		if err := c.do(ctx, http.MethodGet, p, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAuth removes providerID's credential from the server's auth.json.
func (c *Client) DeleteAuth(ctx context.Context, providerID string) error {
	return c.do(ctx, http.MethodDelete, "/auth/"+authPath(providerID), nil, nil)
}

// Dispose makes the server drop its loaded instance, so the next request loads configuration
// (and well-known remote configuration) afresh.
func (c *Client) Dispose(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/instance/dispose", nil, nil)
}

// authPath escapes an auth id for the path. Well-known ids are URLs: every reserved character,
// ':' included, must arrive escaped for OpenCode to file the entry under the URL itself.
func authPath(id string) string {
	return strings.ReplaceAll(url.QueryEscape(id), "+", "%20")
}
