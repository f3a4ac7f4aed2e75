// Package activities holds every workflow's activities: the workspace container (Docker),
// OpenCode (health, credentials, session, prompt, idle checks), the project row, connections
// and their OAuth sign-ins and refreshes, key rewraps and the prebuilt-workspace pool. Each
// struct gets its dependencies injected, Vault and Docker as the small interfaces of deps.go so
// that tests run the activities without them; each method is idempotent, because Temporal may
// run it more than once.
package activities

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/doce-dev/doce/agent"
	"github.com/doce-dev/doce/secrets"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workflows"
	"github.com/doce-dev/doce/workspace"
)

// Docker brings workspaces up.
type Docker struct {
	Store     *store.Store
	Secrets   Cipher
	Workspace Containers
	Image     string
	Memory    int64
	NanoCPUs  int64    // the workspace's CPU limit; 0: none
	Pids      int64    // the workspace's pids limit
	DNS       []string // name servers for workspaces; empty: Docker's default
	Env       []string // more environment for every workspace: the egress proxy's
	// Ask lists the permissions the agent asks its owner for (DOCE_AGENT_ASK).
	Ask []string
	// GatewayURL is the LLM gateway as workspaces reach it (DOCE_GATEWAY_URL).
	GatewayURL string
	// Host is the Docker host this worker serves (DOCE_HOST_NAME); a step run locally for a
	// project on another host refuses (onThisHost).
	Host string
}

// fieldServerPassword is the Transit context field of a project's OpenCode password.
const fieldServerPassword = agent.FieldServerPassword

// ComposeUp creates (or finds) the project's network, volumes and OpenCode container, starts it
// and records where it listens.
func (a *Docker) ComposeUp(ctx context.Context, in workflows.StepInput) (workflows.ComposeUpResult, error) {
	// Docker and Vault calls give no progress to report; heartbeat while they run, so a worker
	// that dies mid-step is noticed within the heartbeat timeout, not the step's whole timeout.
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := startStep(ctx, a.Store, a.Host, in.ProjectID)
	if err != nil {
		return workflows.ComposeUpResult{}, err
	}
	conn, err := projectConnection(ctx, a.Store, p)
	if err != nil {
		return workflows.ComposeUpResult{}, err
	}
	config, err := agent.Config(p, conn, a.Ask, a.GatewayURL)
	if err != nil {
		return workflows.ComposeUpResult{}, err
	}
	password, err := a.serverPassword(ctx, p)
	if err != nil {
		return workflows.ComposeUpResult{}, err
	}
	ws, err := a.Workspace.Up(ctx, workspace.Spec{
		ProjectID:      p.ID,
		Image:          a.Image,
		Password:       password,
		MemoryBytes:    a.Memory,
		NanoCPUs:       a.NanoCPUs,
		PidsLimit:      a.Pids,
		OpenCodeConfig: config,
		Import:         p.RepositoryURL != "",
		DNS:            a.DNS,
		Env:            a.Env,
	})
	if errors.Is(err, workspace.ErrImageMissing) {
		return workflows.ComposeUpResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("The workspace image %s is not on the Docker host. An operator must build it (scripts/workspace-image.sh).", a.Image),
			workflows.ErrTypeImageMissing, nil)
	} else if errors.Is(err, workspace.ErrAddressPoolFull) {
		return workflows.ComposeUpResult{}, temporal.NewApplicationError(
			"The Docker host has no address range left for another workspace network. An administrator can widen its address pools (dockerd --default-address-pool) or delete projects, then retry.",
			workflows.ErrTypeNoHost)
	} else if err != nil {
		return workflows.ComposeUpResult{}, err
	}
	p.ContainerID, p.ContainerName, p.HostPort, p.PreviewHostPort = ws.ContainerID, ws.ContainerName, ws.HostPort, ws.PreviewHostPort
	if err := a.Store.RecordContainer(ctx, p.ID, ws.ContainerID, ws.ContainerName, ws.HostPort, ws.PreviewHostPort); err != nil {
		return workflows.ComposeUpResult{}, err
	}
	return workflows.ComposeUpResult{ContainerName: ws.ContainerName, HostPort: ws.HostPort}, nil
}

// heartbeatWhile heartbeats every 2 s until the returned stop is called. Every step that runs
// on a project's host does, so a host's worker that goes away mid-step is noticed within the
// heartbeat timeout and the step waits for it on the host's queue. (A local activity's
// heartbeat is a no-op.)
func heartbeatWhile(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// ComposeDown removes the project's containers, volumes and network.
func (a *Docker) ComposeDown(ctx context.Context, in workflows.StepInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	return a.Workspace.Down(ctx, in.ProjectID)
}

// ContainerState reports whether the project's workspace container runs, and the project's
// status.
func (a *Docker) ContainerState(ctx context.Context, in workflows.StepInput) (workflows.ContainerState, error) {
	stop := heartbeatWhile(ctx)
	defer stop()
	p, err := loadProject(ctx, a.Store, in.ProjectID)
	if err != nil {
		return workflows.ContainerState{}, err
	}
	if err := onThisHost(ctx, a.Host, p); err != nil {
		return workflows.ContainerState{}, err
	}
	// The web tier asks this of a workspace it cannot reach: one Docker restarted on new ports
	// is found there.
	c, _, err := follow(ctx, a.Store, a.Workspace.Inspect, p)
	return workflows.ContainerState{Exists: c.Exists, Running: c.Running, Status: p.Status}, err
}

// Stop stops the project's workspace container, keeping it and its volumes.
func (a *Docker) Stop(ctx context.Context, in workflows.StepInput) error {
	stop := heartbeatWhile(ctx)
	defer stop()
	return a.Workspace.Stop(ctx, in.ProjectID)
}

// serverPassword returns the project's OpenCode password, creating it on first use. The first
// stored one wins, so a retry never starts a container with a different password.
func (a *Docker) serverPassword(ctx context.Context, p *store.Project) (string, error) {
	keyCtx := secrets.ProjectContext(p.ID, fieldServerPassword)
	ct := p.ServerPasswordCiphertext
	if ct == "" {
		pw := base64.RawURLEncoding.EncodeToString(store.RandomToken(24))
		fresh, _, err := a.Secrets.Encrypt(ctx, []byte(pw), keyCtx)
		if err != nil {
			return "", err
		}
		if ct, err = a.Store.SetProjectPasswordOnce(ctx, p.ID, fresh); err != nil {
			return "", err
		}
	}
	pw, err := a.Secrets.Decrypt(ctx, ct, keyCtx)
	if err != nil {
		return "", err
	}
	return string(pw), nil
}

// follow inspects the project's container and records where it is published, on p too, when
// Docker restarted it on other host ports (it restarts an OpenCode that exited).
func follow(ctx context.Context, st *store.Store, inspect func(context.Context, string) (workspace.Container, error), p *store.Project) (w workspace.Container, moved bool, err error) {
	w, err = inspect(ctx, p.ID)
	if err != nil || !w.Running || w.HostPort == 0 || (w.HostPort == p.HostPort && w.PreviewHostPort == p.PreviewHostPort) {
		return w, false, err
	}
	activity.GetLogger(ctx).Warn("Docker restarted the workspace on new ports; following it", "project_id", p.ID,
		"restarts", w.Restarts, "exit_code", w.ExitCode, "oom_killed", w.OOMKilled, "host_port", w.HostPort)
	if err := st.RecordPorts(ctx, p.ID, w.HostPort, w.PreviewHostPort); err != nil {
		return w, false, err
	}
	p.HostPort, p.PreviewHostPort = w.HostPort, w.PreviewHostPort
	return w, true, nil
}

// startStep loads the project a setup step works on, refuses it as a local activity of a worker
// serving another host (onThisHost), and records the step's attempt, so pages can show
// "running (attempt n)" while Temporal retries it.
func startStep(ctx context.Context, s *store.Store, host, id string) (*store.Project, error) {
	p, err := loadProject(ctx, s, id)
	if err != nil {
		return nil, err
	}
	if err := onThisHost(ctx, host, p); err != nil {
		return nil, err
	}
	info := activity.GetInfo(ctx)
	log := activity.GetLogger(ctx) // carries the workflow and run ids and the activity type
	log.Debug("step started", "project_id", id, "user_id", p.OwnerUserID, "attempt", info.Attempt)
	if err := s.RecordStepAttempt(ctx, id, info.ActivityType.Name, int(info.Attempt)); err != nil {
		log.Warn("unable to record attempt", "project_id", id, "error", err)
	}
	return p, nil
}

func loadProject(ctx context.Context, s *store.Store, id string) (*store.Project, error) {
	p, err := s.Project(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && p.DeletedAt != nil) {
		return nil, temporal.NewNonRetryableApplicationError("The project was deleted.", workflows.ErrTypeProjectGone, nil)
	}
	return p, err
}

// projectConnection is the owner's connection to the project's provider; none ends the step
// with errProviderNotConnected, for the owner to act on.
func projectConnection(ctx context.Context, st *store.Store, p *store.Project) (*store.ProviderConnection, error) {
	conn, err := st.Connection(ctx, p.OwnerUserID, p.ProviderID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errProviderNotConnected(p.ProviderID)
	}
	return conn, err
}

func errProviderNotConnected(providerID string) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("The provider %q is not connected. Connect it on the Providers page, then retry.", providerID),
		workflows.ErrTypeProviderNotConnected, nil)
}
