// Package workspace runs a project's containers on Docker, compose-style: one network, two
// volumes and the OpenCode container per project, all found again by name and label, so every
// operation is idempotent.
package workspace

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/errgroup"
)

// Labels doce puts on everything it creates. The compose labels make `docker compose ls` and
// other tooling group a project's objects; LabelProject finds them for teardown.
const (
	LabelComposeProject = "com.docker.compose.project"
	LabelComposeService = "com.docker.compose.service"
	LabelProject        = "dev.doce.project"
	LabelManaged        = "dev.doce.managed"
	// LabelPool marks a workspace made for the pool. Labels cannot change, so it stays on a
	// workspace a project claimed; the database says which are still unclaimed.
	LabelPool = "dev.doce.pool"
)

const (
	openCodePort  = nat.Port("4096/tcp")
	workspaceDir  = "/workspace"
	stateDir      = "/root/.local/share/opencode" // OpenCode's auth.json and sessions
	serviceName   = "opencode"
	configFile    = "opencode.json"
	portWaitLimit = 5 * time.Second
)

// ErrImageMissing means the OpenCode image is not on the Docker host; retrying will not help.
var ErrImageMissing = errors.New("workspace: image not found")

// Manager creates and removes workspaces.
type Manager struct {
	docker *client.Client
	// PublishHost is the host address the OpenCode port is published on. Loopback keeps the
	// port off the network: the server hands out stored keys to anyone with its password.
	publishHost string
}

// NewManager connects to the Docker engine named by DOCKER_HOST (or the default socket).
func NewManager(publishHost string) (*Manager, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to create docker client: %w", err)
	}
	return &Manager{docker: c, publishHost: publishHost}, nil
}

// Ping checks the engine answers.
func (m *Manager) Ping(ctx context.Context) error {
	if _, err := m.docker.Ping(ctx); err != nil {
		return fmt.Errorf("workspace: docker engine unreachable: %w", err)
	}
	return nil
}

// Close releases the docker client.
func (m *Manager) Close() error { return m.docker.Close() }

// Spec says what a project's workspace runs.
type Spec struct {
	ProjectID   string
	Image       string
	Password    string // OPENCODE_SERVER_PASSWORD
	MemoryBytes int64
	// OpenCodeConfig is written to /workspace/opencode.json before the container starts.
	OpenCodeConfig []byte
	// DNS, when set, are the only name servers the workspace asks (an air-gapped site's own).
	DNS []string
	// Pooled marks a prebuilt workspace, started before any project claims it.
	Pooled bool
}

// Workspace is a running workspace.
type Workspace struct {
	ContainerID   string
	ContainerName string
	HostPort      int
}

// Names of a project's Docker objects.
func composeProject(projectID string) string { return "doce-" + projectID }
func networkName(projectID string) string    { return composeProject(projectID) + "_default" }
func containerName(projectID string) string  { return composeProject(projectID) + "-" + serviceName }
func volumeName(projectID, v string) string  { return composeProject(projectID) + "_" + v }

func labels(projectID, service string) map[string]string {
	l := map[string]string{
		LabelComposeProject: composeProject(projectID),
		LabelProject:        projectID,
		LabelManaged:        "true",
	}
	if service != "" {
		l[LabelComposeService] = service
	}
	return l
}

func containerLabels(s Spec) map[string]string {
	l := labels(s.ProjectID, serviceName)
	if s.Pooled {
		l[LabelPool] = "true"
	}
	return l
}

// PooledIDs lists the ids of every workspace made for the pool, claimed or not.
func (m *Manager) PooledIDs(ctx context.Context) ([]string, error) {
	cs, err := m.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelPool+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list pooled containers: %w", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.Labels[LabelProject])
	}
	return ids, nil
}

// Up brings a project's workspace up, creating what is missing and starting what is stopped.
func (m *Manager) Up(ctx context.Context, s Spec) (Workspace, error) {
	// The network and the volumes do not depend on each other: make them at once, since the
	// network (iptables) is the slow one and a setup waits on all three.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.ensureNetwork(gctx, s.ProjectID) })
	for _, v := range []string{"workspace", "state"} {
		g.Go(func() error {
			_, err := m.docker.VolumeCreate(gctx, volume.CreateOptions{Name: volumeName(s.ProjectID, v), Labels: labels(s.ProjectID, "")})
			if err != nil {
				return fmt.Errorf("workspace: unable to create volume %s: %w", v, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Workspace{}, err
	}
	id, err := m.ensureContainer(ctx, s)
	if err != nil {
		return Workspace{}, err
	}
	return m.start(ctx, id, s)
}

func (m *Manager) ensureNetwork(ctx context.Context, projectID string) error {
	name := networkName(projectID)
	if _, err := m.docker.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspace: unable to inspect network: %w", err)
	}
	_, err := m.docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels(projectID, "")})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("workspace: unable to create network: %w", err)
	}
	return nil
}

func (m *Manager) ensureContainer(ctx context.Context, s Spec) (string, error) {
	name := containerName(s.ProjectID)
	if c, err := m.docker.ContainerInspect(ctx, name); err == nil {
		// A prebuilt workspace was started before its project was known: it gets the
		// project's configuration now. A file already there (the agent's edits) is kept.
		return c.ID, m.writeConfigIfMissing(ctx, c.ID, s.OpenCodeConfig)
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("workspace: unable to inspect container: %w", err)
	}
	cfg := &container.Config{
		Image:        s.Image,
		Env:          []string{"OPENCODE_SERVER_PASSWORD=" + s.Password},
		ExposedPorts: nat.PortSet{openCodePort: {}},
		Labels:       containerLabels(s),
		WorkingDir:   workspaceDir,
	}
	host := &container.HostConfig{
		PortBindings: nat.PortMap{openCodePort: {{HostIP: m.publishHost, HostPort: ""}}}, // Docker picks the port
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: volumeName(s.ProjectID, "workspace"), Target: workspaceDir},
			{Type: mount.TypeVolume, Source: volumeName(s.ProjectID, "state"), Target: stateDir},
		},
		Resources:     container.Resources{Memory: s.MemoryBytes},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		// Lets a workspace reach an LLM served on the Docker host (self-hosted models).
		ExtraHosts: []string{"host.docker.internal:host-gateway"},
		DNS:        s.DNS,
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		networkName(s.ProjectID): {Aliases: []string{serviceName}},
	}}
	created, err := m.docker.ContainerCreate(ctx, cfg, host, netCfg, nil, name)
	switch {
	case err == nil:
	case cerrdefs.IsConflict(err): // created by a concurrent attempt
		c, err := m.docker.ContainerInspect(ctx, name)
		if err != nil {
			return "", fmt.Errorf("workspace: unable to inspect container: %w", err)
		}
		return c.ID, nil
	case cerrdefs.IsNotFound(err):
		return "", fmt.Errorf("%w: %s (build it with scripts/opencode-image.sh)", ErrImageMissing, s.Image)
	default:
		return "", fmt.Errorf("workspace: unable to create container: %w", err)
	}
	if err := m.writeConfig(ctx, created.ID, s.OpenCodeConfig); err != nil {
		return "", err
	}
	return created.ID, nil
}

// writeConfig writes the project's opencode.json into the workspace; nothing when there is none
// (a prebuilt workspace, which gets it when claimed).
func (m *Manager) writeConfig(ctx context.Context, id string, config []byte) error {
	if config == nil {
		return nil
	}
	if err := m.docker.CopyToContainer(ctx, id, workspaceDir, tarOf(configFile, config), container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("workspace: unable to write %s: %w", configFile, err)
	}
	return nil
}

// ReplaceConfig gives a running workspace the configuration to when it holds exactly from (the
// one a prebuilt workspace starts with), and returns what it holds now. Anything else there (an
// edit of the user's or the agent's) is left alone.
func (m *Manager) ReplaceConfig(ctx context.Context, projectID string, from, to []byte) ([]byte, error) {
	name := containerName(projectID)
	rc, _, err := m.docker.CopyFromContainer(ctx, name, workspaceDir+"/"+configFile)
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	now, err := io.ReadAll(io.LimitReader(tr, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	if !bytes.Equal(now, from) {
		return now, nil
	}
	if err := m.writeConfig(ctx, name, to); err != nil {
		return nil, err
	}
	return to, nil
}

func (m *Manager) writeConfigIfMissing(ctx context.Context, id string, config []byte) error {
	if config == nil {
		return nil
	}
	_, err := m.docker.ContainerStatPath(ctx, id, workspaceDir+"/"+configFile)
	if err == nil {
		return nil
	} else if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspace: unable to look for %s: %w", configFile, err)
	}
	return m.writeConfig(ctx, id, config)
}

func (m *Manager) start(ctx context.Context, id string, s Spec) (Workspace, error) {
	c, err := m.docker.ContainerInspect(ctx, id)
	if err != nil {
		return Workspace{}, fmt.Errorf("workspace: unable to inspect container: %w", err)
	}
	if !c.State.Running {
		if err := m.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return Workspace{}, fmt.Errorf("workspace: unable to start container: %w", err)
		}
	}
	// The published port appears in the inspect answer once the container runs.
	deadline := time.Now().Add(portWaitLimit)
	for {
		c, err = m.docker.ContainerInspect(ctx, id)
		if err != nil {
			return Workspace{}, fmt.Errorf("workspace: unable to inspect container: %w", err)
		}
		if port := hostPort(c); port > 0 {
			return Workspace{ContainerID: c.ID, ContainerName: containerName(s.ProjectID), HostPort: port}, nil
		}
		if time.Now().After(deadline) {
			return Workspace{}, fmt.Errorf("workspace: container %s publishes no port for %s (state %s)", c.Name, openCodePort, c.State.Status)
		}
		select {
		case <-ctx.Done():
			return Workspace{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func hostPort(c container.InspectResponse) int {
	if c.NetworkSettings == nil {
		return 0
	}
	for _, b := range c.NetworkSettings.Ports[openCodePort] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return p
		}
	}
	return 0
}

// State says whether the project's OpenCode container exists and runs.
func (m *Manager) State(ctx context.Context, projectID string) (exists, running bool, err error) {
	c, err := m.docker.ContainerInspect(ctx, containerName(projectID))
	if cerrdefs.IsNotFound(err) {
		return false, false, nil
	} else if err != nil {
		return false, false, fmt.Errorf("workspace: unable to inspect container: %w", err)
	}
	return true, c.State.Running, nil
}

// Start starts the project's existing OpenCode container if it is stopped. Docker may publish
// it on another port than before; the result says which.
func (m *Manager) Start(ctx context.Context, projectID string) (Workspace, error) {
	return m.start(ctx, containerName(projectID), Spec{ProjectID: projectID})
}

// Down removes everything a project owns: containers, volumes, network. Missing objects are fine.
func (m *Manager) Down(ctx context.Context, projectID string) error {
	f := filters.NewArgs(filters.Arg("label", LabelProject+"="+projectID))
	cs, err := m.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("workspace: unable to list containers: %w", err)
	}
	for _, c := range cs {
		if err := m.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to remove container: %w", err)
		}
	}
	vs, err := m.docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("workspace: unable to list volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		if err := m.docker.VolumeRemove(ctx, v.Name, true); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to remove volume: %w", err)
		}
	}
	ns, err := m.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("workspace: unable to list networks: %w", err)
	}
	for _, n := range ns {
		if err := m.docker.NetworkRemove(ctx, n.ID); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to remove network: %w", err)
		}
	}
	return nil
}

func tarOf(name string, content []byte) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Writing to a bytes.Buffer cannot fail.
	_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Now()})
	_, _ = tw.Write(content)
	_ = tw.Close()
	return &buf
}
