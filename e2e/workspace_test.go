package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// checkScript runs inside the workspace through the agent's bash tool. It is written by the
// agent's write tool first, so the bash tool sees one command in the project (OpenCode asks
// before commands that name paths outside it) and the checks can touch the system freely.
const checkScript = `echo "uid=$(id -u) gid=$(id -g)"
git --version
rg --version | head -n 1
echo "node $(node --version) npm $(npm --version)"
python3 -c 'import sys; print("python", sys.version.split()[0])'
python3 -m venv --without-pip /tmp/venv && echo venv-ok
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status
touch /usr/x 2>&1 || true
echo "pids.max=$(cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max)"
echo "memory.max=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"
echo "pid1=$(cat /proc/1/comm)"
echo "home=$HOME port=$PORT"
mkdir -p "$HOME/.npm/probe" && echo home-writable
echo x >/tmp/probe && echo tmp-writable
stat -c 'owner %u %n' /workspace /workspace/AGENTS.md /workspace/opencode.json "$HOME"
echo "commits=$(git -C /workspace rev-list --count HEAD)"
`

// TestAgentToolsInWorkspace has the agent of a project created through doce's API use its
// tools in the real workspace image, scripted by the mock LLM: bash runs the toolchain and
// reports the hardening from inside, write/read/edit change a file, grep and glob find it, and
// a failing tool's error shows in the session.
func TestAgentToolsInWorkspace(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	llm := startMockLLM(t, hostGatewayIP(t))
	doce := startDoce(t, stack, fmt.Sprintf("e2e-tools-%d", time.Now().UnixNano()))
	hc := newClient(t)
	if resp, err := hc.PostForm(doce.URL+"/setup", url.Values{"username": {"admin"}, "password": {"correct horse battery"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first-run setup: %v", err)
	}
	key := "sk-e2e-tools-" + base64.RawURLEncoding.EncodeToString(store.RandomToken(18))
	if status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/connections", map[string]any{"providerId": "custom", "apiKey": key,
		"baseURL": "http://host.docker.internal:" + llm.port() + "/v1", "models": "mock-model"}); status != http.StatusCreated {
		t.Fatalf("connect: %d %s", status, body)
	}

	const trigger = "Check the workspace and its tools."
	const file = "/workspace/notes/hello.txt"
	bash := func(command string) mockToolCall {
		return mockToolCall{Name: "bash", Args: map[string]any{"command": command, "description": "Run the workspace checks"}}
	}
	llm.script(trigger,
		mockReply{ToolCalls: []mockToolCall{{Name: "write", Args: map[string]any{"filePath": "/workspace/checks.sh", "content": checkScript}}}},
		mockReply{ToolCalls: []mockToolCall{bash("sh checks.sh >checks.txt 2>&1")}},
		mockReply{ToolCalls: []mockToolCall{{Name: "write", Args: map[string]any{"filePath": file, "content": "hello from the agent\nsecond line\n"}}}},
		mockReply{ToolCalls: []mockToolCall{{Name: "read", Args: map[string]any{"filePath": file}}}},
		mockReply{ToolCalls: []mockToolCall{{Name: "edit", Args: map[string]any{"filePath": file, "oldString": "second line", "newString": "edited line"}}}},
		mockReply{ToolCalls: []mockToolCall{
			{Name: "grep", Args: map[string]any{"pattern": "edited line"}},
			{Name: "glob", Args: map[string]any{"pattern": "**/hello.txt"}},
		}},
		mockReply{ToolCalls: []mockToolCall{{Name: "read", Args: map[string]any{"filePath": "/workspace/no-such-file.txt"}}}},
		mockReply{Chunks: []string{"All checks ", "done."}},
	)

	status, body := apiCall(t, hc, doce.URL, "POST", "/api/v1/projects", map[string]any{"prompt": trigger, "providerId": "custom", "modelId": "mock-model"})
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct{ Project projectState }
	json.Unmarshal(body, &created)
	id := created.Project.ID
	waitStatus(t, hc, doce, id, "ready", 8*time.Minute) // OpenCode starts in seconds, minutes on a loaded machine

	cs, err := docker.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", workspace.LabelProject+"="+id))})
	if err != nil || len(cs) != 1 {
		t.Fatalf("containers: %d %v", len(cs), err)
	}
	ci, err := docker.ContainerInspect(context.Background(), cs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	oc := openCodeOf(t, ci)

	// The conversation runs to the mock's last reply.
	var sessions []struct{ ID string }
	oc.get(t, "/session", &sessions)
	if len(sessions) != 1 {
		t.Fatalf("%d sessions, want 1", len(sessions))
	}
	var parts []messagePart
	waitFor(t, "the agent's last answer", 5*time.Minute, func() (bool, error) {
		parts = oc.parts(t, sessions[0].ID)
		for _, p := range parts {
			if p.Type == "text" && strings.Contains(p.Text, "All checks done.") {
				return true, nil
			}
		}
		return false, fmt.Errorf("%d parts so far", len(parts))
	})

	// bash ran in the workspace: the checks' output is on the project's volume.
	checks := string(readContainerFile(t, docker, ci.ID, "/workspace/checks.txt"))
	t.Logf("checks.txt:\n%s", checks)
	for _, want := range []string{
		"uid=1000 gid=1000",
		"git version 2.",
		"ripgrep 13.",
		"node v18.", "npm 9.",
		"python 3.11",
		"venv-ok",
		"CapEff:\t0000000000000000", // every capability dropped
		"NoNewPrivs:\t1",
		"touch: cannot touch '/usr/x': Read-only file system",
		"pids.max=1024",
		"memory.max=" + strconv.Itoa(1<<30),
		"pid1=tini",
		"home=" + workspace.HomeDir + " port=" + strconv.Itoa(workspace.AppPort),
		"home-writable",
		"tmp-writable",
		"owner 1000 /workspace\n",
		"owner 1000 /workspace/AGENTS.md",
		"owner 1000 /workspace/opencode.json",
		"owner 1000 " + workspace.HomeDir,
		"commits=1", // the project is a git repository from the start
	} {
		if !strings.Contains(checks, want) {
			t.Errorf("checks.txt lacks %q", want)
		}
	}

	// write, read and edit changed the file; grep and glob found it.
	if got := string(readContainerFile(t, docker, ci.ID, file)); got != "hello from the agent\nedited line\n" {
		t.Errorf("%s holds %q after write and edit", file, got)
	}
	tools := map[string][]messagePart{}
	for _, p := range parts {
		if p.Type == "tool" {
			tools[p.Tool] = append(tools[p.Tool], p)
		}
	}
	for name, want := range map[string]int{"write": 2, "bash": 1, "read": 2, "edit": 1, "grep": 1, "glob": 1} {
		if len(tools[name]) != want {
			t.Errorf("%d %s tool parts, want %d", len(tools[name]), name, want)
		}
	}
	for _, p := range append(append(tools["edit"], tools["grep"]...), tools["glob"]...) {
		if p.State.Status != "completed" {
			t.Errorf("%s: %s %s", p.Tool, p.State.Status, p.State.Error)
		}
	}
	if g := tools["grep"]; len(g) == 1 && !strings.Contains(g[0].State.Output, "notes/hello.txt") {
		t.Errorf("grep output lacks the file: %q", g[0].State.Output)
	}
	if g := tools["glob"]; len(g) == 1 && !strings.Contains(g[0].State.Output, "notes/hello.txt") {
		t.Errorf("glob output lacks the file: %q", g[0].State.Output)
	}
	// The failing tool's error is in the session.
	if r := tools["read"]; len(r) == 2 {
		if failed := r[1]; failed.State.Status != "error" || !strings.Contains(failed.State.Error, "no-such-file.txt") {
			t.Errorf("read of a missing file: %s %q", failed.State.Status, failed.State.Error)
		}
	}

	// AGENTS.md tells the agent where it is, and holds no secret.
	agents := string(readContainerFile(t, docker, ci.ID, "/workspace/AGENTS.md"))
	for _, want := range []string{"doce project", "/workspace", "0.0.0.0", "port 3000"} {
		if !strings.Contains(agents, want) {
			t.Errorf("AGENTS.md lacks %q:\n%s", want, agents)
		}
	}

	// The container's settings, as Docker reports them.
	h := ci.HostConfig
	if ci.Config.User != "1000:1000" || len(h.CapDrop) != 1 || h.CapDrop[0] != "ALL" || !h.ReadonlyRootfs ||
		len(h.SecurityOpt) != 1 || h.SecurityOpt[0] != "no-new-privileges" || h.PidsLimit == nil || *h.PidsLimit != 1024 ||
		h.Memory != 1<<30 || !strings.Contains(h.Tmpfs["/tmp"], "size=") {
		t.Errorf("container settings: user %q capdrop %v readonly %v securityopt %v pids %v memory %d tmpfs %v",
			ci.Config.User, h.CapDrop, h.ReadonlyRootfs, h.SecurityOpt, h.PidsLimit, h.Memory, h.Tmpfs)
	}
	for _, b := range ci.NetworkSettings.Ports["4096/tcp"] {
		if b.HostIP != "127.0.0.1" {
			t.Errorf("OpenCode port bound to %q, want loopback only", b.HostIP)
		}
	}
	assertNoSecretInInspect(t, ci, key)
	if !strings.Contains(llm.requestsWith(trigger), "Bearer "+key) {
		t.Error("the agent's requests did not carry the connected key")
	}
}

// assertNoSecretInInspect checks `docker inspect` of a workspace shows no provider secret: the
// credentials go to OpenCode through PUT /auth only, never into the container's environment,
// labels or command.
func assertNoSecretInInspect(t *testing.T, ci container.InspectResponse, secret string) {
	t.Helper()
	b, err := json.Marshal(ci)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Error("docker inspect of the workspace shows the provider secret")
	}
}

// requestsWith returns the Authorization headers of the chat requests whose body holds s.
func (m *mockLLM) requestsWith(s string) string {
	var auth []string
	for _, rq := range m.requests() {
		if rq.Path == "/v1/chat/completions" && strings.Contains(rq.Body, s) {
			auth = append(auth, rq.Authorization)
		}
	}
	return strings.Join(auth, "\n")
}

// openCode talks to a workspace's OpenCode server on its loopback port with its password, as
// doce's worker does.
type openCode struct{ base, password string }

func openCodeOf(t *testing.T, ci container.InspectResponse) openCode {
	t.Helper()
	b := ci.NetworkSettings.Ports["4096/tcp"]
	if len(b) == 0 {
		t.Fatal("OpenCode port not published")
	}
	return openCode{base: "http://127.0.0.1:" + b[0].HostPort, password: envOf(ci.Config.Env, "OPENCODE_SERVER_PASSWORD")}
}

func (o openCode) get(t *testing.T, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, o.base+path, nil)
	req.SetBasicAuth("opencode", o.password)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// messagePart is a part of an OpenCode message: text, or a tool call with its state.
type messagePart struct {
	Type, Text, Tool string
	State            struct{ Status, Output, Error string }
}

// parts lists the parts of every message of a session, in order.
func (o openCode) parts(t *testing.T, sessionID string) []messagePart {
	t.Helper()
	var msgs []struct{ Parts []messagePart }
	o.get(t, "/session/"+sessionID+"/message", &msgs)
	var all []messagePart
	for _, m := range msgs {
		all = append(all, m.Parts...)
	}
	return all
}
