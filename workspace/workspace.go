// Package workspace runs a project's workspace behind one interface, Backend. Manager runs it
// on Docker, compose-style: one network, two volumes and the OpenCode container per project;
// Kube runs it on Kubernetes: a volume claim, a Secret, a NetworkPolicy and a pod (kube.go).
// Both find everything again by name and label, so every operation is idempotent.
package workspace

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"golang.org/x/sync/errgroup"

	"github.com/doce-dev/doce/egress"
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
	// LabelPoolConfig is the sum of the configuration a pooled workspace started on.
	LabelPoolConfig = "dev.doce.pool.config"
	// LabelPoolOwner names the pool that made a pooled workspace (its task queue): a pool
	// sweeps only its own leftovers, never the workspaces of another doce sharing the engine.
	LabelPoolOwner = "dev.doce.pool.owner"
)

// Where things are in the workspace image (scripts/workspace-image.sh).
const (
	// AgentUID owns the project and the home; the agent and OpenCode run as this user.
	AgentUID = 1000
	// HomeDir is the agent's home, a volume: OpenCode's state (AuthFile, sessions, snapshots),
	// npm's and pip's caches.
	HomeDir = "/home/agent"
	// AuthFile is where OpenCode keeps the credentials set through PUT /auth.
	AuthFile = HomeDir + "/.local/share/opencode/auth.json"
	// AppPort is the port an app the agent serves listens on (on 0.0.0.0), for the preview.
	AppPort = 3000
)

// previewPort is AppPort as Docker names it. doce publishes it on loopback, like OpenCode's
// port, and serves it to the project's owner through its preview proxy only.
var previewPort = nat.Port(strconv.Itoa(AppPort) + "/tcp")

const (
	openCodePort  = nat.Port("4096/tcp")
	workspaceDir  = "/workspace"
	serviceName   = "opencode"
	configFile    = "opencode.json"
	agentsFile    = "AGENTS.md"
	portWaitLimit = 5 * time.Second
	// tmpSize bounds /tmp, a tmpfs whose pages count against the memory limit.
	tmpSize = "256m"
)

// AgentsMD, written into every new workspace as AGENTS.md, tells the agent where it is. It
// never holds a secret: the agent and anything it runs read it.
var AgentsMD = []byte(`# A doce project

You are working in a doce project's workspace.

- The project is the working directory, ` + workspaceDir + `, a git repository. Keep its files there.
- An app you serve must listen on 0.0.0.0, port ` + strconv.Itoa(AppPort) + ` (also in $PORT): that is the port doce previews.
- You run as an unprivileged user without root or sudo; the system directories are read-only.
  Install into the project or your home: ` + "`npm install`" + `, ` + "`python3 -m venv .venv`" + `. /tmp is small.
`)

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
	return NewManagerAt("", publishHost)
}

// NewManagerAt connects to the Docker engine at endpoint (as DOCKER_HOST would name it, e.g.
// unix:///run/docker-2.sock or tcp://dock-2:2376 with DOCKER_TLS_VERIFY's certificates); an
// empty endpoint is NewManager's.
func NewManagerAt(endpoint, publishHost string) (*Manager, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if endpoint != "" {
		opts = append(opts, client.WithHost(endpoint))
	}
	c, err := client.NewClientWithOpts(opts...)
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
	NanoCPUs    int64 // CPU time, in billionths of a CPU; 0: no limit
	PidsLimit   int64 // processes and threads; bounds a fork bomb
	// OpenCodeConfig is written to /workspace/opencode.json before the container starts.
	OpenCodeConfig []byte
	// DNS, when set, are the only name servers the workspace asks (an air-gapped site's own).
	DNS []string
	// Env is more of the workspace's environment, e.g. the egress proxy (HTTP_PROXY...).
	Env []string
	// Import says the project is made from a repository the setup places after the container
	// starts: its entrypoint waits for it before making /workspace a repository of its own.
	Import bool
	// Pooled marks a prebuilt workspace, started before any project claims it; ConfigSum names
	// the configuration it starts on (a label, read back by Pooled).
	Pooled    bool
	ConfigSum string
	// PoolOwner names the pool that made a pooled workspace.
	PoolOwner string
}

// Workspace is a running workspace.
type Workspace struct {
	ContainerID   string
	ContainerName string
	HostPort      int
	// PreviewHostPort is where AppPort is published; 0 for a container made before
	// previews, which published none.
	PreviewHostPort int
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
		l[LabelPoolConfig] = s.ConfigSum
		l[LabelPoolOwner] = s.PoolOwner
	}
	return l
}

// PooledIDs lists the ids of every workspace pool owner made, claimed or not.
func (m *Manager) PooledIDs(ctx context.Context, owner string) ([]string, error) {
	cs, err := m.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelPool+"=true"), filters.Arg("label", LabelPoolOwner+"="+owner))})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list pooled containers: %w", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.Labels[LabelProject])
	}
	return ids, nil
}

// A pooled workspace starts and waits at the smallest CPU share Docker allows: while setups
// run, a refilling pool takes only the CPU they leave. The project that claims one gives it
// the full share (ClaimCPU).
const (
	pooledCPUShares = 2
	fullCPUShares   = 1024 // Docker's default
)

func cpuShares(s Spec) int64 {
	if s.Pooled {
		return pooledCPUShares
	}
	return 0 // Docker's default
}

// ClaimCPU gives a claimed pooled workspace the CPU share of any other workspace.
func (m *Manager) ClaimCPU(ctx context.Context, projectID string) error {
	_, err := m.docker.ContainerUpdate(ctx, containerName(projectID), container.UpdateConfig{Resources: container.Resources{CPUShares: fullCPUShares}})
	if err != nil {
		return fmt.Errorf("workspace: unable to give the workspace its CPU share: %w", err)
	}
	return nil
}

// Pooled reports whether the project's workspace was made for the pool (and claimed since),
// and the sum of the configuration it was started on.
func (m *Manager) Pooled(ctx context.Context, projectID string) (pooled bool, configSum string, err error) {
	c, err := m.docker.ContainerInspect(ctx, containerName(projectID))
	if err != nil {
		return false, "", fmt.Errorf("workspace: unable to inspect container: %w", err)
	}
	return c.Config.Labels[LabelPool] == "true", c.Config.Labels[LabelPoolConfig], nil
}

// Up brings a project's workspace up, creating what is missing and starting what is stopped.
func (m *Manager) Up(ctx context.Context, s Spec) (Workspace, error) {
	// The network and the volumes do not depend on each other: make them at once, since the
	// network (iptables) is the slow one and a setup waits on all three.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.ensureNetwork(gctx, s.ProjectID) })
	for _, v := range []string{"workspace", "home"} {
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

// ErrAddressPoolFull means the Docker engine has no address range left for another network:
// every workspace has one, so the host holds no more workspaces until some are deleted.
var ErrAddressPoolFull = errors.New("workspace: the Docker host has no free address range for another workspace network")

// ensureNetwork makes the project's network, its bridge named for the egress rules
// (egress.BridgeName). A network made before those rules, under a name of Docker's choosing, is
// made again and the workspace moved onto it: the rules would not see it.
func (m *Manager) ensureNetwork(ctx context.Context, projectID string) error {
	name := networkName(projectID)
	n, err := m.docker.NetworkInspect(ctx, name, network.InspectOptions{})
	switch {
	case err == nil && n.Options[bridgeNameOption] == egress.BridgeName(name):
		return nil
	case err == nil:
		return m.replaceNetwork(ctx, projectID)
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("workspace: unable to inspect network: %w", err)
	}
	return m.createNetwork(ctx, projectID)
}

const bridgeNameOption = "com.docker.network.bridge.name"

func (m *Manager) createNetwork(ctx context.Context, projectID string) error {
	name := networkName(projectID)
	_, err := m.docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels(projectID, ""),
		Options: map[string]string{bridgeNameOption: egress.BridgeName(name)}})
	switch {
	case err == nil, cerrdefs.IsConflict(err):
		return nil
	case strings.Contains(err.Error(), "address pool") || strings.Contains(err.Error(), "predefined address space"):
		return fmt.Errorf("%w (%w)", ErrAddressPoolFull, err)
	}
	return fmt.Errorf("workspace: unable to create network: %w", err)
}

// replaceNetwork moves the project's container (if any) to a network made anew.
func (m *Manager) replaceNetwork(ctx context.Context, projectID string) error {
	name := networkName(projectID)
	_, cerr := m.docker.ContainerInspect(ctx, containerName(projectID))
	if cerr != nil && !cerrdefs.IsNotFound(cerr) {
		return fmt.Errorf("workspace: unable to inspect container: %w", cerr)
	}
	attached := cerr == nil
	if attached {
		if err := m.docker.NetworkDisconnect(ctx, name, containerName(projectID), true); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("workspace: unable to leave the old network: %w", err)
		}
	}
	if err := m.docker.NetworkRemove(ctx, name); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspace: unable to remove the old network: %w", err)
	}
	if err := m.createNetwork(ctx, projectID); err != nil {
		return err
	}
	if attached {
		err := m.docker.NetworkConnect(ctx, name, containerName(projectID), &network.EndpointSettings{Aliases: []string{serviceName}})
		if err != nil {
			return fmt.Errorf("workspace: unable to join the new network: %w", err)
		}
	}
	return nil
}

// Networks lists the subnets of the workspace networks on this engine, each with the id of
// the workspace (project) it belongs to: how the egress proxy knows who is asking.
func (m *Manager) Networks(ctx context.Context) (map[netip.Prefix]string, error) {
	ns, err := m.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("workspace: unable to list networks: %w", err)
	}
	out := map[netip.Prefix]string{}
	for _, n := range ns {
		// A network the egress rules do not see is no workspace's way out.
		if n.Options[bridgeNameOption] != egress.BridgeName(n.Name) {
			continue
		}
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				out[p.Masked()] = n.Labels[LabelProject]
			}
		}
	}
	return out, nil
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
		Image: s.Image,
		User:  fmt.Sprintf("%d:%d", AgentUID, AgentUID),
		// OpenCode keeps to the model catalog it was built with (the image pins its version)
		// rather than fetching models.dev at each instance load: a site without the internet
		// would otherwise wait out the fetch's timeout before a session opens.
		Env:          append([]string{"OPENCODE_SERVER_PASSWORD=" + s.Password, "PORT=" + strconv.Itoa(AppPort), "OPENCODE_DISABLE_MODELS_FETCH=true"}, s.Env...),
		ExposedPorts: nat.PortSet{openCodePort: {}, previewPort: {}},
		Labels:       containerLabels(s),
		WorkingDir:   workspaceDir,
	}
	if s.Import {
		cfg.Env = append(cfg.Env, "DOCE_IMPORT=1")
	}
	pids := s.PidsLimit
	host := &container.HostConfig{
		// Docker picks the ports.
		PortBindings: nat.PortMap{
			openCodePort: {{HostIP: m.publishHost, HostPort: ""}},
			previewPort:  {{HostIP: m.publishHost, HostPort: ""}},
		},
		// The agent runs whatever a prompt leads it to: it gets no capability, cannot gain
		// privileges through setuid binaries, and writes only the project, its home and /tmp.
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Mounts: []mount.Mount{
			// New volumes take the image's directories with their owner (the agent).
			{Type: mount.TypeVolume, Source: volumeName(s.ProjectID, "workspace"), Target: workspaceDir},
			{Type: mount.TypeVolume, Source: volumeName(s.ProjectID, "home"), Target: HomeDir},
		},
		// exec: build tools (node-gyp, pip) run what they unpack in /tmp.
		Tmpfs:         map[string]string{"/tmp": "rw,exec,nosuid,nodev,mode=1777,size=" + tmpSize},
		Resources:     container.Resources{Memory: s.MemoryBytes, NanoCPUs: s.NanoCPUs, PidsLimit: &pids, CPUShares: cpuShares(s)},
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
		return "", fmt.Errorf("%w: %s (build it with scripts/workspace-image.sh)", ErrImageMissing, s.Image)
	default:
		return "", fmt.Errorf("workspace: unable to create container: %w", err)
	}
	files := tarOf(map[string][]byte{configFile: s.OpenCodeConfig, agentsFile: AgentsMD})
	if err := m.docker.CopyToContainer(ctx, created.ID, workspaceDir, files, container.CopyToContainerOptions{}); err != nil {
		return "", fmt.Errorf("workspace: unable to write %s and %s: %w", configFile, agentsFile, err)
	}
	return created.ID, nil
}

// writeConfig writes the project's opencode.json into the workspace; nothing when there is none
// (a prebuilt workspace, which gets it when claimed).
func (m *Manager) writeConfig(ctx context.Context, id string, config []byte) error {
	if config == nil {
		return nil
	}
	if err := m.docker.CopyToContainer(ctx, id, workspaceDir, tarOf(map[string][]byte{configFile: config}), container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("workspace: unable to write %s: %w", configFile, err)
	}
	return nil
}

// ReplaceConfig gives a running workspace the configuration to when what it holds is one
// replaceable accepts (the one a prebuilt workspace started on), and returns what it holds now
// and whether it wrote it.
// Anything else there (an edit of the user's or the agent's) is left alone.
func (m *Manager) ReplaceConfig(ctx context.Context, projectID string, replaceable func(now []byte) bool, to []byte) (now []byte, replaced bool, err error) {
	name := containerName(projectID)
	rc, _, err := m.docker.CopyFromContainer(ctx, name, workspaceDir+"/"+configFile)
	if err != nil {
		return nil, false, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, false, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	now, err = io.ReadAll(io.LimitReader(tr, 1<<20))
	if err != nil {
		return nil, false, fmt.Errorf("workspace: unable to read %s: %w", configFile, err)
	}
	if !replaceable(now) {
		return now, false, nil
	}
	if err := m.writeConfig(ctx, name, to); err != nil {
		return nil, false, err
	}
	return to, true, nil
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
		if port := hostPort(c, openCodePort); port > 0 {
			return Workspace{ContainerID: c.ID, ContainerName: containerName(s.ProjectID), HostPort: port, PreviewHostPort: hostPort(c, previewPort)}, nil
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

func hostPort(c container.InspectResponse, port nat.Port) int {
	if c.NetworkSettings == nil {
		return 0
	}
	for _, b := range c.NetworkSettings.Ports[port] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return p
		}
	}
	return 0
}

// Container is what Docker says of a project's OpenCode container.
type Container struct {
	Exists, Running bool
	Status          string // Docker's: created, running, restarting, exited…
	// Restarts counts the times Docker restarted it after OpenCode exited; each restart
	// publishes it on new host ports.
	Restarts  int
	ExitCode  int
	OOMKilled bool
	// Where it is published now; 0 while it does not run.
	HostPort, PreviewHostPort int
}

// String says it in words, for an error that has to explain why OpenCode does not answer.
func (c Container) String() string {
	if !c.Exists {
		return "no container"
	}
	s := "container " + c.Status
	if c.Restarts > 0 {
		s += fmt.Sprintf(", restarted %d times", c.Restarts)
	}
	if c.Restarts > 0 || !c.Running {
		s += fmt.Sprintf(", last exit code %d", c.ExitCode)
	}
	if c.OOMKilled {
		s += " (out of memory)"
	}
	if c.Running && c.HostPort > 0 {
		s += fmt.Sprintf(", published on port %d", c.HostPort)
	}
	return s
}

// Accepts dials the host port a workspace is published on. Docker publishes each port through
// a docker-proxy process; one that died leaves the container running with nothing accepting
// on its port, and a dial refused there is how that shows.
func (m *Manager) Accepts(ctx context.Context, _ string, hostPort int) error {
	host := m.publishHost
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	d := net.Dialer{Timeout: time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(hostPort)))
	if err != nil {
		return fmt.Errorf("workspace: nothing accepts on the published port %d: %w", hostPort, err)
	}
	return conn.Close()
}

// Inspect says whether the project's OpenCode container exists and runs, and where.
func (m *Manager) Inspect(ctx context.Context, projectID string) (Container, error) {
	c, err := m.docker.ContainerInspect(ctx, containerName(projectID))
	if cerrdefs.IsNotFound(err) {
		return Container{}, nil
	} else if err != nil {
		return Container{}, fmt.Errorf("workspace: unable to inspect container: %w", err)
	}
	w := Container{Exists: true, Restarts: c.RestartCount}
	if c.State != nil {
		w.Running, w.Status, w.ExitCode, w.OOMKilled = c.State.Running, c.State.Status, c.State.ExitCode, c.State.OOMKilled
	}
	if w.Running {
		w.HostPort, w.PreviewHostPort = hostPort(c, openCodePort), hostPort(c, previewPort)
	}
	return w, nil
}

// Start starts the project's existing OpenCode container if it is stopped. Docker may publish
// it on another port than before; the result says which.
func (m *Manager) Start(ctx context.Context, projectID string) (Workspace, error) {
	if err := m.ensureNetwork(ctx, projectID); err != nil {
		return Workspace{}, err
	}
	return m.start(ctx, containerName(projectID), Spec{ProjectID: projectID})
}

// stopGrace is how long a stopping OpenCode gets to finish writing before it is killed.
const stopGrace = 10 * time.Second

// Stop stops the project's OpenCode container and keeps it, with its volumes, for a later
// Start. A container already stopped or missing is fine.
func (m *Manager) Stop(ctx context.Context, projectID string) error {
	grace := int(stopGrace / time.Second)
	err := m.docker.ContainerStop(ctx, containerName(projectID), container.StopOptions{Timeout: &grace})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("workspace: unable to stop container: %w", err)
	}
	return nil
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

// tarOf packs files for CopyToContainer, owned by the agent so it can edit them.
func tarOf(files map[string][]byte) *bytes.Buffer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		content := files[name]
		// Writing to a bytes.Buffer cannot fail.
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Now(), Uid: AgentUID, Gid: AgentUID})
		_, _ = tw.Write(content)
	}
	_ = tw.Close()
	return &buf
}

// HostGateway is the address a workspace reaches as host.docker.internal: Docker maps
// host-gateway to the default bridge's gateway (docker0), unless the engine was started with
// another --host-gateway-ip, which the API does not show; DOCE_HOST_GATEWAY covers that case.
func (m *Manager) HostGateway(ctx context.Context) (netip.Addr, error) {
	bridge, err := m.docker.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("workspace: unable to inspect the default bridge: %w", err)
	}
	for _, c := range bridge.IPAM.Config {
		if a, err := netip.ParseAddr(c.Gateway); err == nil && a.Is4() {
			return a, nil
		}
	}
	// Some engines leave the gateway out of IPAM: read it off the bridge interface.
	name := bridge.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("workspace: the default bridge has no gateway: %w", err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			addr, _ := netip.AddrFromSlice(ipn.IP.To4())
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("workspace: bridge %s has no IPv4 address", name)
}

// dockerDefaultPools are the address pools of an engine started without
// --default-address-pool: 172.17–31.0.0/16 and 192.168.0.0/16 in /20s, 31 networks.
func dockerDefaultPools() []system.NetworkAddressPool {
	pools := []system.NetworkAddressPool{{Base: "192.168.0.0/16", Size: 20}}
	for i := 17; i <= 31; i++ {
		pools = append(pools, system.NetworkAddressPool{Base: fmt.Sprintf("172.%d.0.0/16", i), Size: 16})
	}
	return pools
}

// NetworkRoom is how many workspace networks the engine's address pools hold: their networks
// less those other networks (the default bridge, other software's) take. Each workspace has
// a network, so it bounds the workspaces the host holds; past it Docker refuses a network.
func (m *Manager) NetworkRoom(ctx context.Context) (int, error) {
	info, err := m.docker.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("workspace: unable to read the engine's address pools: %w", err)
	}
	pools := info.DefaultAddressPools
	if len(pools) == 0 {
		pools = dockerDefaultPools()
	}
	var bases []netip.Prefix
	room := 0
	for _, p := range pools {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil || p.Size < base.Bits() || p.Size > 32 || !base.Addr().Is4() {
			continue
		}
		bases = append(bases, base)
		room += 1 << min(p.Size-base.Bits(), 24)
	}
	ns, err := m.docker.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("workspace: unable to list networks: %w", err)
	}
	for _, n := range ns {
		if n.Labels[LabelManaged] == "true" {
			continue
		}
		for _, c := range n.IPAM.Config {
			if sub, err := netip.ParsePrefix(c.Subnet); err == nil && slices.ContainsFunc(bases, func(b netip.Prefix) bool { return b.Overlaps(sub) }) {
				room--
				break
			}
		}
	}
	return max(room, 0), nil
}
