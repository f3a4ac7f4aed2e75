package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/oauth"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/providers"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// OpenCode drives a workspace's OpenCode server.
type OpenCode struct {
	Store     *store.Store
	Secrets   Decrypter
	Workspace Workspaces
	// Agent reaches the project's OpenCode server.
	Agent *agent.Connector
	// Ask names the permissions the agent asks its owner for (DOCE_AGENT_ASK), as in Docker.
	Ask []string
	// GatewayURL is the LLM gateway as workspaces reach it, as in Docker.
	GatewayURL string
	// Host is the Docker host this worker serves, as in Docker.
	Host string
	// PollInterval is how often waitHealthy asks (default 50 ms): OpenCode's health answer is
	// cheap, and every poll interval is latency added to the setup.
	PollInterval time.Duration
}

// healthRequestTimeout bounds one health request: OpenCode can hang a request made while it
// starts, and a hung request must not eat the heartbeat budget.
const healthRequestTimeout = 2 * time.Second

// WaitHealthy polls GET /global/health until OpenCode answers healthy, heartbeating each poll.
// It is bounded by the activity's start-to-close timeout.
func (a *OpenCode) WaitHealthy(ctx context.Context, in workflows.StepInput) error {
	// The password's decrypt may wait out a Vault restart, and a prebuilt workspace's
	// configuration is replaced and loaded after the polls: heartbeat throughout.
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil {
		return err
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return err
	}
	if c, err = a.pollHealthy(ctx, c, a.look(ctx, p)); err != nil {
		return err
	}
	return a.configure(ctx, c, p)
}

// configure makes sure OpenCode runs on the project's configuration. A prebuilt workspace
// loaded its configuration before the claim: the project's own (nothing to do), or the base
// one, which it replaces and has OpenCode load again. Checking what is loaded, rather than
// remembering what was written, covers an attempt that stopped between the two.
func (a *OpenCode) configure(ctx context.Context, c *opencode.Client, p *store.Project) error {
	// A workspace made for its project got the project's configuration when it was created.
	pooled, started, err := a.Workspace.Pooled(ctx, p.ID)
	if err != nil || !pooled {
		return err
	}
	if err := a.Workspace.ClaimCPU(ctx, p.ID); err != nil {
		return err
	}
	conn, err := projectConnection(ctx, a.Store, p)
	if err != nil {
		return err
	}
	want, err := agent.Config(p, conn, a.Ask, a.GatewayURL)
	if err != nil {
		return err
	}
	if started == agent.ConfigSum(want) {
		return nil
	}
	now, replaced, err := a.Workspace.ReplaceConfig(ctx, p.ID, func(now []byte) bool { return agent.ConfigSum(now) == started }, want)
	switch {
	case err != nil:
		return err
	case replaced:
		activity.GetLogger(ctx).Info("prebuilt workspace given the project's configuration; OpenCode loads it again", "project_id", p.ID)
		return c.Dispose(ctx)
	case !bytes.Equal(now, want):
		return nil // someone else's configuration: theirs to keep
	}
	loaded, err := c.Config(ctx)
	if err != nil || loaded.Model == agent.Model(p) {
		return err
	}
	return c.Dispose(ctx)
}

// look is how pollHealthy follows a container Docker restarted: it returns the client to
// poll with now and what Docker says of the container.
type look func() (*opencode.Client, workspace.Container, error)

// lookEvery is how often pollHealthy looks at a container whose OpenCode it cannot reach.
const lookEvery = time.Second

// pollHealthy polls GET /global/health until OpenCode answers healthy, heartbeating each poll,
// until ctx ends, and returns the client that reached it. Docker restarts an OpenCode that
// exited and publishes it on new host ports: while the polls fail, pollHealthy looks each
// second, polls where the container is now, and a poll that runs out says what Docker saw.
func (a *OpenCode) pollHealthy(ctx context.Context, c *opencode.Client, look look) (*opencode.Client, error) {
	interval := a.PollInterval
	if interval <= 0 {
		interval = 50 * time.Millisecond
	}
	// A step that runs out of time ends with a timeout, its own error left in the worker's log:
	// give up a little before, so the error says why.
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-min(2*time.Second, time.Until(deadline)/4)))
		defer cancel()
	}
	var (
		seen workspace.Container
		saw  bool
	)
	looked := time.Now()
	for polls := 1; ; polls++ {
		h, err := c.Health(ctx, healthRequestTimeout)
		if err == nil && h.Healthy {
			activity.GetLogger(ctx).Info("opencode healthy", "version", h.Version, "polls", polls)
			return c, nil
		}
		activity.RecordHeartbeat(ctx, polls)
		if time.Since(looked) >= lookEvery {
			looked = time.Now()
			now, w, lerr := look()
			if lerr != nil {
				activity.GetLogger(ctx).Warn("unable to look at the workspace container", "error", lerr)
			} else {
				c, seen, saw = now, w, true
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("answered but not healthy")
			}
			if saw {
				return nil, fmt.Errorf("OpenCode did not become healthy after %d polls (%s): %w", polls, seen, err)
			}
			return nil, fmt.Errorf("OpenCode did not become healthy after %d polls: %w", polls, err)
		case <-time.After(interval):
		}
	}
}

// refusedLooks is how many looks in a row must find a running container's published port
// refusing before look restarts it: OpenCode opens its port a moment after the container
// starts, so one refusal proves nothing.
const refusedLooks = 3

// look follows the project's container: where Docker restarted it on new host ports, they are
// recorded, on p too, so that this step and every later one reach OpenCode where it is now.
// A container that runs while nothing accepts on its published port lost the docker-proxy
// that publishes it (killed, or the engine failed to start it under load); Docker never
// notices, so look restarts the container once, which publishes it again on new ports. A
// workspace found stopped (its pod deleted) is started again, once too.
func (a *OpenCode) look(ctx context.Context, p *store.Project) look {
	var (
		c         *opencode.Client
		refused   int
		restarted bool
	)
	return func() (*opencode.Client, workspace.Container, error) {
		w, moved, err := follow(ctx, a.Store, a.Workspace.Inspect, p)
		if err != nil {
			return nil, w, err
		}
		if w.Exists && w.Status == "exited" && !restarted {
			// Gone while doce waited for it: a pod deleted or evicted (nothing makes a
			// workspace's pod again by itself), a container Docker gave up restarting.
			restarted = true
			activity.GetLogger(ctx).Warn("the workspace stopped while doce waited for OpenCode; starting it again", "project_id", p.ID)
			if _, err := a.Workspace.Start(ctx, p.ID); err != nil {
				return nil, w, err
			}
			if w, moved, err = follow(ctx, a.Store, a.Workspace.Inspect, p); err != nil {
				return nil, w, err
			}
			c = nil
		} else if w.Running && w.HostPort > 0 && !moved && !restarted {
			if a.Workspace.Accepts(ctx, p.ID, w.HostPort) == nil {
				refused = 0
			} else if refused++; refused >= refusedLooks {
				restarted = true
				activity.GetLogger(ctx).Warn("the workspace runs but nothing accepts on its published port; restarting it so Docker publishes it again",
					"project_id", p.ID, "host_port", w.HostPort)
				if err := a.Workspace.Stop(ctx, p.ID); err != nil {
					return nil, w, err
				}
				if _, err := a.Workspace.Start(ctx, p.ID); err != nil {
					return nil, w, err
				}
				if w, moved, err = follow(ctx, a.Store, a.Workspace.Inspect, p); err != nil {
					return nil, w, err
				}
				// The workspace may be reached elsewhere now (a pod's new address) though its
				// port is the same.
				c = nil
			}
		}
		if moved || c == nil {
			if c, err = a.Agent.Client(ctx, p); err != nil {
				return nil, w, err
			}
		}
		return c, w, nil
	}
}

// SetProviderCredentials hands OpenCode what it authenticates to the project's provider with,
// through PUT /auth/{provider}: a fresh gateway token for a provider used through the LLM
// gateway (the key never enters the workspace), else the decrypted credential. The plaintext
// lives only in this function.
func (a *OpenCode) SetProviderCredentials(ctx context.Context, in workflows.StepInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil {
		return err
	}
	conn, err := projectConnection(ctx, a.Store, p)
	if err != nil {
		return err
	}
	if conn.Status != store.ConnConnected {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("The %s connection is %s. Reconnect it on the Providers page, then retry.", conn.ProviderID, conn.Status),
			workflows.ErrTypeProviderNotConnected, nil)
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return err
	}
	if err := a.setAuth(ctx, c, p.ID, conn); err != nil {
		return err
	}
	return a.Store.TouchConnection(ctx, conn, p.ID)
}

// setAuth hands conn's credential, or a gateway token for it, to the OpenCode of project
// projectID. An OAuth token refreshed meanwhile, and pushed to running projects before this
// one took the old, is handed over again: the last PUT wins.
func (a *OpenCode) setAuth(ctx context.Context, c *opencode.Client, projectID string, conn *store.ProviderConnection) error {
	for range 3 {
		if err := a.putAuth(ctx, c, projectID, conn); err != nil {
			return err
		}
		if conn.AuthType != store.AuthOAuth {
			return nil
		}
		now, err := a.Store.Connection(ctx, conn.UserID, conn.ProviderID)
		if err != nil {
			return err
		}
		if now.OAuthAccessCiphertext == conn.OAuthAccessCiphertext || now.Status != store.ConnConnected {
			return nil
		}
		conn = now
	}
	return errors.New("the token changed three times while it was being handed over")
}

func (a *OpenCode) putAuth(ctx context.Context, c *opencode.Client, projectID string, conn *store.ProviderConnection) error {
	auth, err := a.credential(ctx, projectID, conn)
	if err != nil {
		return err
	}
	if err := c.SetAuth(ctx, authID(conn), auth); err != nil {
		// Report the status only: an error body could echo what we sent.
		var se *opencode.StatusError
		if errors.As(err, &se) {
			if opencode.IsClientError(err) {
				return temporal.NewNonRetryableApplicationError(
					fmt.Sprintf("OpenCode refused the %s credentials (HTTP %d). Check the connection on the Providers page, then retry.", conn.ProviderID, se.Code),
					workflows.ErrTypeCredentialsRejected, nil)
			}
			return fmt.Errorf("OpenCode answered HTTP %d to PUT /auth/%s", se.Code, conn.ProviderID)
		}
		return err
	}
	if conn.AuthType == store.AuthWellKnown {
		// OpenCode reads the organisation's configuration when it loads; make it load again.
		return c.Dispose(ctx)
	}
	return nil
}

// authID is the key OpenCode files a connection's credential under: the provider id, or for a
// well-known connection the organisation's URL.
func authID(conn *store.ProviderConnection) string {
	if conn.AuthType == store.AuthWellKnown {
		return conn.WellKnownURL
	}
	return conn.ProviderID
}

// credential is what project projectID's OpenCode gets for conn, in the shape its auth API
// takes: a new gateway token, which replaces the project's earlier one, when the gateway
// serves the connection; else the connection decrypted.
func (a *OpenCode) credential(ctx context.Context, projectID string, conn *store.ProviderConnection) (opencode.Auth, error) {
	if providers.Proxied(conn.ProviderID, conn.AuthType) {
		token, err := a.Store.IssueGatewayToken(ctx, projectID, conn.ID)
		if err != nil {
			return opencode.Auth{}, err
		}
		return opencode.Auth{Type: store.AuthAPI, Key: token}, nil
	}
	switch conn.AuthType {
	case store.AuthAPI:
		key, err := a.decrypt(ctx, conn, conn.APIKeyCiphertext, secrets.FieldAPIKey,
			fmt.Sprintf("The stored %s key cannot be decrypted. Reconnect the provider on the Providers page, then retry.", conn.ProviderID))
		if err != nil {
			return opencode.Auth{}, err
		}
		return opencode.Auth{Type: store.AuthAPI, Key: string(key)}, nil
	case store.AuthWellKnown:
		token, err := a.decrypt(ctx, conn, conn.WellKnownCiphertext, secrets.FieldWellKnown,
			"The stored well-known token cannot be decrypted. Reconnect it on the Providers page, then retry.")
		if err != nil {
			return opencode.Auth{}, err
		}
		return opencode.Auth{Type: store.AuthWellKnown, Key: conn.WellKnownEnv, Token: string(token)}, nil
	case store.AuthOAuth:
		return a.oauthCredential(ctx, conn)
	default:
		return opencode.Auth{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("Connections of type %s are not supported yet.", conn.AuthType),
			workflows.ErrTypeCredentialsRejected, nil)
	}
}

// decrypt decrypts one field of a connection. A ciphertext Vault refuses for this row will
// not decrypt on a retry either: that ends the step with undecryptable, for the owner to act on.
func (a *OpenCode) decrypt(ctx context.Context, conn *store.ProviderConnection, ciphertext, field, undecryptable string) ([]byte, error) {
	b, err := a.Secrets.Decrypt(ctx, ciphertext, secrets.ConnectionContext(conn.UserID, conn.ProviderID, field))
	if errors.Is(err, secrets.ErrUndecryptable) {
		return nil, temporal.NewNonRetryableApplicationError(undecryptable, workflows.ErrTypeCredentialsRejected, nil)
	}
	return b, err
}

// oauthCredential is an OAuth connection in the shape OpenCode 1.18.33 keeps for its provider.
// GitHub Copilot sends the GitHub token itself (OpenCode reads it from "refresh") and never
// refreshes it (expires 0); ChatGPT gets the real pair with its expiry and account id. doce
// refreshes before the expiry and hands the new pair over, so OpenCode never refreshes.
func (a *OpenCode) oauthCredential(ctx context.Context, conn *store.ProviderConnection) (opencode.Auth, error) {
	undecryptable := fmt.Sprintf("The stored %s sign-in cannot be decrypted. Log in again on the Providers page, then retry.", conn.ProviderID)
	access, err := a.decrypt(ctx, conn, conn.OAuthAccessCiphertext, secrets.FieldOAuthAccess, undecryptable)
	if err != nil {
		return opencode.Auth{}, err
	}
	auth := opencode.Auth{Type: store.AuthOAuth, Access: string(access)}
	p, _ := providers.Lookup(conn.ProviderID)
	if p.OAuth != nil && p.OAuth.Flow == providers.FlowGitHubDevice {
		never := int64(0)
		auth.Refresh, auth.Expires = auth.Access, &never
		if conn.OAuthEnterpriseURL != "" {
			auth.EnterpriseURL = oauth.EnterpriseHost(conn.OAuthEnterpriseURL)
		}
		return auth, nil
	}
	if conn.OAuthRefreshCiphertext != "" {
		refresh, err := a.decrypt(ctx, conn, conn.OAuthRefreshCiphertext, secrets.FieldOAuthRefresh, undecryptable)
		if err != nil {
			return opencode.Auth{}, err
		}
		auth.Refresh = string(refresh)
	}
	if conn.OAuthExpiresAt != nil {
		ms := conn.OAuthExpiresAt.UnixMilli()
		auth.Expires = &ms
	}
	auth.AccountID = conn.OAuthAccountID
	return auth, nil
}

// PushProviderCredentials hands a project's running OpenCode the connection's current
// credential (or a new gateway token for it), after the user replaced it or a token refresh. A stopped or missing workspace is left alone: it gets
// the current credential when it next starts.
func (a *OpenCode) PushProviderCredentials(ctx context.Context, in workflows.ProjectCredentialsInput) error {
	// Docker, Vault and OpenCode each may take a while to answer; a worker that dies meanwhile
	// is noticed at the heartbeat timeout, not the step's.
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := a.liveProject(ctx, in.ProjectID)
	if p == nil || err != nil {
		return err
	}
	if w, _, err := follow(ctx, a.Store, a.Workspace.Inspect, p); err != nil {
		return err
	} else if !w.Running {
		return nil
	}
	conn, err := a.Store.Connection(ctx, p.OwnerUserID, in.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if conn.Status != store.ConnConnected {
		return nil
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return err
	}
	return a.setAuth(ctx, c, p.ID, conn)
}

// SessionCreate opens the project's OpenCode session once. The request is recorded before it
// is made: a re-run that finds it recorded without an answer (a worker died in between) adopts
// the session OpenCode already holds instead of opening a second.
func (a *OpenCode) SessionCreate(ctx context.Context, in workflows.StepInput) (workflows.SessionResult, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil {
		return workflows.SessionResult{}, err
	}
	if p.OpenCodeSessionID != "" {
		return workflows.SessionResult{SessionID: p.OpenCodeSessionID}, nil
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return workflows.SessionResult{}, err
	}
	var id string
	if p.SessionRequestedAt != nil {
		existing, err := c.Sessions(ctx)
		if err != nil {
			return workflows.SessionResult{}, err
		}
		// OpenCode lists the most recently updated first: the last is the oldest, the one the
		// interrupted attempt opened before anything else could.
		if len(existing) > 0 {
			id = existing[len(existing)-1].ID
		}
	} else {
		now := time.Now().UTC()
		p.SessionRequestedAt = &now
		if err := a.Store.MarkSessionRequested(ctx, p.ID, now); err != nil {
			return workflows.SessionResult{}, err
		}
	}
	if id == "" {
		s, err := c.CreateSession(ctx, p.Name)
		if err != nil {
			return workflows.SessionResult{}, err
		}
		id = s.ID
	}
	p.OpenCodeSessionID = id
	if err := a.Store.RecordSession(ctx, p.ID, id); err != nil {
		return workflows.SessionResult{}, err
	}
	return workflows.SessionResult{SessionID: id}, nil
}

// SendInitialPrompt sends the project's prompt once, recording the request before making it: a
// re-run that finds it recorded without the answer looks for the prompt in the session first.
func (a *OpenCode) SendInitialPrompt(ctx context.Context, in workflows.StepInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil {
		return err
	}
	if p.PromptSentAt != nil || p.Prompt == "" { // a project made from a repository may have none
		return nil
	}
	if p.OpenCodeSessionID == "" {
		return errors.New("the project has no OpenCode session yet")
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return err
	}
	sent := false
	if p.PromptRequestedAt != nil {
		if sent, err = hasUserMessage(ctx, c, p.OpenCodeSessionID); err != nil {
			return err
		}
	} else {
		now := time.Now().UTC()
		p.PromptRequestedAt = &now
		if err := a.Store.MarkPromptRequested(ctx, p.ID, now); err != nil {
			return err
		}
	}
	if !sent {
		model := opencode.Model{ProviderID: p.ProviderID, ModelID: p.ModelID}
		if p.ProviderID == providers.WellKnownID {
			if model.ProviderID, model.ModelID, err = providers.SplitModel(p.ModelID); err != nil {
				return temporal.NewNonRetryableApplicationError("The project's model "+p.ModelID+" is not provider/model.", workflows.ErrTypeCredentialsRejected, nil)
			}
		}
		if err := c.PromptAsync(ctx, p.OpenCodeSessionID, model, p.Prompt); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	p.PromptSentAt = &now
	return a.Store.MarkPromptSent(ctx, p.ID, now)
}

// hasUserMessage reports whether the session holds a user message: an earlier attempt sent
// the prompt.
func hasUserMessage(ctx context.Context, c *opencode.Client, sessionID string) (bool, error) {
	msgs, err := c.Messages(ctx, sessionID)
	if err != nil {
		return false, err
	}
	for _, m := range msgs {
		if m.Info.Role == "user" {
			return true, nil
		}
	}
	return false, nil
}

// IdleCheck tells the idle watch whether the project is still ready and whether its agent is
// working. A ready project whose container does not run has no agent working.
func (a *OpenCode) IdleCheck(ctx context.Context, in workflows.StepInput) (workflows.IdleCheck, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := a.liveProject(ctx, in.ProjectID)
	if p == nil || err != nil || p.Status != status.Ready {
		return workflows.IdleCheck{}, err
	}
	if err := onThisHost(ctx, a.Host, p); err != nil {
		return workflows.IdleCheck{}, err
	}
	if w, _, err := follow(ctx, a.Store, a.Workspace.Inspect, p); err != nil || !w.Running {
		return workflows.IdleCheck{Ready: true}, err
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return workflows.IdleCheck{}, err
	}
	busy, err := c.Busy(ctx)
	if err != nil {
		return workflows.IdleCheck{}, err
	}
	return workflows.IdleCheck{Ready: true, Busy: busy}, nil
}

// liveProject loads a project whose workspace was started and is not being deleted; nil when
// there is none (a project being deleted loses its volumes, auth.json with them).
func (a *OpenCode) liveProject(ctx context.Context, id string) (*store.Project, error) {
	p, err := a.Store.Project(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if p.DeletedAt != nil || p.HostPort == 0 || p.Status == status.Deleting || p.Status == status.Deleted {
		return nil, nil
	}
	return p, nil
}

// RemoveProviderCredentials makes a project's OpenCode forget a provider (DELETE /auth). A
// stopped workspace is started first, since its auth.json outlives the container; a project
// without a container holds nothing to remove.
func (a *OpenCode) RemoveProviderCredentials(ctx context.Context, in workflows.ProjectCredentialsInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := a.liveProject(ctx, in.ProjectID)
	if p == nil || err != nil {
		return err
	}
	// The gateway stops honouring the project's token first, whatever becomes of the rest.
	if err := a.Store.RevokeGatewayToken(ctx, p.ID); err != nil {
		return err
	}
	w, _, err := follow(ctx, a.Store, a.Workspace.Inspect, p)
	if err != nil {
		return err
	}
	if !w.Exists {
		return nil
	}
	if !w.Running {
		ws, err := a.Workspace.Start(ctx, p.ID)
		if err != nil {
			return err
		}
		// Started only to forget the credential: stopped again however this ends, so a stopped
		// project stays stopped.
		defer func() {
			if err := a.Workspace.Stop(context.WithoutCancel(ctx), p.ID); err != nil {
				activity.GetLogger(ctx).Warn("unable to stop the workspace again", "project_id", p.ID, "error", err)
			}
		}()
		p.HostPort, p.PreviewHostPort = ws.HostPort, ws.PreviewHostPort
		if err := a.Store.RecordPorts(ctx, p.ID, ws.HostPort, ws.PreviewHostPort); err != nil {
			return err
		}
	}
	c, err := a.Agent.Client(ctx, p)
	if err != nil {
		return err
	}
	// A container just started needs a few seconds before it answers; a minute without an
	// answer fails this attempt, and the next one looks at the project afresh.
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	c, err = a.pollHealthy(hctx, c, a.look(ctx, p))
	cancel()
	if err != nil {
		return err
	}
	conn, err := a.Store.Connection(ctx, p.OwnerUserID, in.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // removed by an earlier attempt of this disconnect
	} else if err != nil {
		return err
	}
	if err := c.DeleteAuth(ctx, authID(conn)); err != nil {
		return err
	}
	if conn.AuthType == store.AuthWellKnown {
		return c.Dispose(ctx)
	}
	return nil
}
