// Package agent reaches a project's agent: it turns a store.Project into an authenticated
// client of the OpenCode server in the project's workspace. The worker's activities and the web
// tier both use it, so there is one place that knows where a workspace listens and how its
// password is kept.
//
// It is its own package rather than part of workspace/ because workspace/ is the engine side
// (containers, pods, volumes) and imports the Docker and Kubernetes clients; reaching OpenCode needs only the project
// row, Vault and HTTP, and the web tier must not depend on Docker.
package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
)

// FieldServerPassword is the Transit context field of a project's OpenCode server password.
const FieldServerPassword = "server_password"

// ErrNotStarted means the project's workspace has never been started: it has no port or
// password yet.
var ErrNotStarted = errors.New("the workspace container has not been started yet")

// Decrypter opens a project's sealed server password (secrets.Transit does, through Vault).
type Decrypter interface {
	Decrypt(ctx context.Context, ciphertext, keyContext string) ([]byte, error)
}

// Connector makes OpenCode clients for projects.
type Connector struct {
	Secrets Decrypter
	// Host is the address workspace ports are published on and reached at (DOCE_WORKSPACE_HOST).
	Host string
	// Addresses, when set, says where the workspace ports of a Docker host are reached (the
	// DOCE_WORKSPACE_HOST its worker registered), for a tier that reaches projects on many
	// hosts; an empty answer means Host.
	Addresses func(ctx context.Context, host string) string
	// Locate, when set, says where a project's workspace is reached, ahead of Host and
	// Addresses: the Kubernetes backend's pod IP, which changes each time the pod is made.
	Locate func(ctx context.Context, projectID string) (string, error)
	// HTTP carries every request, through DOCE_WORKSPACE_PROXY when set (see NewHTTPClient).
	HTTP *http.Client
}

// Client returns a client of p's OpenCode server. The password is decrypted here and lives
// only inside the returned client.
func (c *Connector) Client(ctx context.Context, p *store.Project) (*opencode.Client, error) {
	if p.HostPort == 0 || p.ServerPasswordCiphertext == "" {
		return nil, ErrNotStarted
	}
	pw, err := c.Secrets.Decrypt(ctx, p.ServerPasswordCiphertext, secrets.ProjectContext(p.ID, FieldServerPassword))
	if err != nil {
		return nil, err
	}
	addr := c.Host
	if c.Locate != nil {
		if addr, err = c.Locate(ctx, p.ID); err != nil {
			return nil, err
		}
	} else if p.Host != "" && c.Addresses != nil {
		if a := c.Addresses(ctx, p.Host); a != "" {
			addr = a
		}
	}
	base := "http://" + net.JoinHostPort(addr, strconv.Itoa(p.HostPort))
	return opencode.New(base, string(pw), c.HTTP), nil
}

// NewHTTPClient is the client OpenCode servers are reached with: through proxy when set (an
// http:// URL, validated by config.Load), never through the environment's proxy, since the
// workspaces are on loopback or the docker bridge. Every call is bounded at 30 s; event
// streams are exempt (opencode.Client.Events).
func NewHTTPClient(proxy string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	if proxy != "" {
		if u, err := url.Parse(proxy); err == nil {
			t.Proxy = http.ProxyURL(u)
		}
	}
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}
