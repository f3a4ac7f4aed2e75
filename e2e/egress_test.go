package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/doce-dev/doce/egress"
	"github.com/doce-dev/doce/workspace"
)

// listenOn serves body over HTTP on host (a free port) until the test ends, and returns its
// port: one that no firewall rule on this machine lets workspaces reach (another install's, or
// a stand-in's that an earlier test closed), so that only the test's own rules decide.
func listenOn(t *testing.T, host, body string) string {
	t.Helper()
	var ln net.Listener
	for try := 0; ; try++ {
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		if !firewallServes(port) && !served.has(port) {
			break
		}
		ln.Close()
		if try == 20 {
			t.Fatal("no port found that no firewall rule serves")
		}
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// probeResult is what a curl run inside a workspace gave: its exit code, how long it took, the
// HTTP status (0: none) and what it printed.
type probeResult struct {
	rc, status int
	took       time.Duration
	out        string
}

var probeLine = regexp.MustCompile(`rc=(\d+) ms=(\d+) code=(\d+) connect=(\d+)`)

// probe runs curl with args in the project's workspace, as the agent's user.
// The status is the answer's, or the proxy's answer to a CONNECT that got no further.
func probe(t *testing.T, projectID string, args ...string) probeResult {
	t.Helper()
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", "doce-"+projectID+"-opencode", "bash", "-c", probeScript(args...)).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec: %v\n%s", err, out)
	}
	return parseProbe(t, string(out))
}

// probeScript is the shell script that runs curl with args and prints what probeResult holds.
func probeScript(args ...string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	// curl times the request itself: on this shared machine starting curl can take a second.
	return `codes=$(curl -sS -m 5 -o /tmp/probe.out -w '%{http_code} %{http_connect} %{time_total}' ` + strings.Join(quoted, " ") +
		` 2>/tmp/probe.err); rc=$?; set -- $codes; ` +
		`echo "rc=$rc ms=$(awk "BEGIN{printf \"%d\", ${3:-0}*1000}") code=${1:-0} connect=${2:-0}"; cat /tmp/probe.out /tmp/probe.err 2>/dev/null | head -c 400; rm -f /tmp/probe.out /tmp/probe.err`
}

func parseProbe(t *testing.T, out string) probeResult {
	t.Helper()
	m := probeLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("probe printed no result: %s", out)
	}
	r := probeResult{out: out}
	r.rc, _ = strconv.Atoi(m[1])
	ms, _ := strconv.Atoi(m[2])
	r.took = time.Duration(ms) * time.Millisecond
	r.status, _ = strconv.Atoi(m[3])
	if r.status == 0 {
		r.status, _ = strconv.Atoi(m[4])
	}
	return r
}

// TestWorkspaceEgress runs probes inside a real workspace: the cloud metadata address, the
// Docker host on a port doce does not serve to workspaces, another workspace, private ranges
// all fail fast, directly and through the egress proxy (which resolves names itself, so a name
// for a private address gets nowhere either); the endpoints doce serves (the mock LLM) answer.
// Then the project's egress mode changes through the API: allow-list reaches the one listed
// destination (a listener on this machine) and nothing else, off reaches nothing.
func TestWorkspaceEgress(t *testing.T) {
	stack := requireStack(t)
	gw := hostGatewayIP(t)
	llm := startMockLLM(t, gw) // served to workspaces
	unserved := listenOn(t, gw, "a host service")
	allowed := listenOn(t, gw, "the allowed destination")
	// The allowed destination lives on this machine, so the proxy may dial the gateway at all;
	// whether a project may is its mode's to say.
	doce := startDoce(t, stack, fmt.Sprintf("e2e-egress-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PRIVATE_HOSTS="+gw)
	hc := admin(t, doce, "sk-e2e-egress")
	a := createProject(t, hc, doce, "egress probes")
	b := createProject(t, hc, doce, "the other workspace")
	waitStatus(t, hc, doce, a.ID, "ready", 4*time.Minute)
	waitStatus(t, hc, doce, b.ID, "ready", 4*time.Minute)
	bIP := containerIP(t, b.ID)

	allowedURL := "http://" + gw + ":" + allowed + "/"
	setEgress := func(mode string, allow ...string) {
		t.Helper()
		if allow == nil {
			allow = []string{}
		}
		status, body := apiCall(t, hc, doce.URL, "PUT", "/api/v1/projects/"+a.ID+"/egress", map[string]any{"mode": mode, "allow": allow})
		if status != http.StatusOK || !strings.Contains(string(body), `"effective":"`+mode+`"`) {
			t.Fatalf("set egress %s: %d %s", mode, status, body)
		}
	}
	// The tests' default is off (the proxy would resolve names on this machine's resolver);
	// this project is opened, and every probe below names an address or localhost.
	setEgress("open")

	blocked := func(what string, args ...string) {
		t.Helper()
		r := probe(t, a.ID, args...)
		t.Logf("%s: curl exit %d, HTTP %d, %s", what, r.rc, r.status, r.took)
		if r.rc == 0 && r.status != http.StatusForbidden || r.status/100 == 2 {
			t.Errorf("%s: reached (exit %d, HTTP %d):\n%s", what, r.rc, r.status, r.out)
		}
		if r.took >= 2*time.Second {
			t.Errorf("%s: took %s to fail, want under 2 s (refused, not dropped):\n%s", what, r.took, r.out)
		}
	}
	reached := func(what, want string, args ...string) {
		t.Helper()
		r := probe(t, a.ID, args...)
		t.Logf("%s: curl exit %d, HTTP %d, %s", what, r.rc, r.status, r.took)
		if r.rc != 0 || !strings.Contains(r.out, want) {
			t.Errorf("%s: not reached (exit %d, HTTP %d), want %q:\n%s", what, r.rc, r.status, want, r.out)
		}
	}
	direct := func(url string) []string { return []string{"--noproxy", "*", url} }
	for what, url := range map[string]string{
		"metadata address": "http://169.254.169.254/latest/meta-data/",
		"link-local":       "http://169.254.1.1/",
		"the host's gateway on a port not served":    "http://" + gw + ":" + unserved + "/",
		"the host as host.docker.internal, unserved": "http://host.docker.internal:" + unserved + "/",
		"another workspace's OpenCode":               "http://" + bIP + ":4096/global/health",
		"another workspace's preview port":           "http://" + bIP + ":3000/",
		"10/8":                                       "http://10.254.254.254/",
		"172.16/12":                                  "http://172.31.254.254/",
		"192.168/16":                                 "http://192.168.254.254/",
	} {
		blocked("direct to "+what, direct(url)...)
	}
	// The proxy: names are resolved there, and a private answer refused.
	for what, url := range map[string]string{
		"metadata address":                "http://169.254.169.254/latest/meta-data/",
		"another workspace":               "http://" + bIP + ":4096/global/health",
		"a name for loopback (localhost)": "http://localhost:" + unserved + "/",
		"10/8":                            "http://10.254.254.254/",
	} {
		blocked("through the proxy to "+what, "--noproxy", "", url)
	}
	llmURL := "http://host.docker.internal:" + llm.port() + "/v1/chat/completions"
	reached("the mock LLM doce serves", "", "--noproxy", "*", llmURL)
	reached("the mock LLM, by a client that ignores NO_PROXY", "", "--noproxy", "", "http://"+gw+":"+llm.port()+"/v1/chat/completions")

	reached("open: the destination, through the proxy", "the allowed destination", allowedURL)

	setEgress("allow-list", gw)
	reached("allow-list: the listed destination", "the allowed destination", allowedURL)
	reached("allow-list: the listed destination, tunnelled (CONNECT)", "the allowed destination", "-p", allowedURL)
	blocked("allow-list: a host not listed (refused before any lookup)", "http://example.com/")
	blocked("allow-list: the listed destination, directly", direct(allowedURL)...)

	setEgress("off")
	blocked("off: the listed destination", allowedURL)
	blocked("off: the listed destination, tunnelled (CONNECT)", "-p", allowedURL)
	reached("off: the mock LLM doce serves", "", "--noproxy", "*", llmURL)

	// Another user's project is not theirs to open up.
	if status, _ := apiCall(t, newClient(t), doce.URL, "PUT", "/api/v1/projects/"+a.ID+"/egress", map[string]any{"mode": "open"}); status/100 != 4 {
		t.Errorf("signed out, set egress: %d, want 4xx", status)
	}
}

// containerIP is the address of the project's workspace on its network.
func containerIP(t *testing.T, projectID string) string {
	t.Helper()
	ci, err := dockerClient(t).ContainerInspect(context.Background(), "doce-"+projectID+"-opencode")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ci.NetworkSettings.Networks {
		if n.IPAddress != "" {
			return n.IPAddress
		}
	}
	t.Fatalf("workspace %s has no address", projectID)
	return ""
}

// otherMachine is a network namespace joined to this host by a veth pair: a machine on the
// host's network that is not doce. hostIP is this host's address on that link.
func otherMachine(t *testing.T) (run func(args ...string) ([]byte, error), hostIP string) {
	t.Helper()
	n := time.Now().UnixNano()
	ns, vh, vn := fmt.Sprintf("doce-e2e-%d", n), fmt.Sprintf("dvh%d", n%1e9), fmt.Sprintf("dvn%d", n%1e9)
	subnet := n % 250
	hostIP, peerIP := fmt.Sprintf("10.199.%d.1", subnet), fmt.Sprintf("10.199.%d.2", subnet)
	t.Cleanup(func() {
		exec.Command("ip", "link", "delete", vh).Run()
		exec.Command("ip", "netns", "delete", ns).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", vh, "type", "veth", "peer", "name", vn},
		{"link", "set", vn, "netns", ns},
		{"addr", "add", hostIP + "/30", "dev", vh},
		{"link", "set", vh, "up"},
		{"netns", "exec", ns, "ip", "addr", "add", peerIP + "/30", "dev", vn},
		{"netns", "exec", ns, "ip", "link", "set", vn, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("cannot make a network namespace here (ip %s): %v %s", strings.Join(args, " "), err, out)
		}
	}
	return func(args ...string) ([]byte, error) {
		return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	}, hostIP
}

// TestPublishedPortsOnlyForDoce publishes workspaces on an address another machine reaches
// (DOCE_WORKSPACE_HOST), as a multi-host install does: doce sets the project up and talks to
// its OpenCode there, while that machine, and another workspace, are refused on both published
// ports (OpenCode's and the preview's) at once.
func TestPublishedPortsOnlyForDoce(t *testing.T) {
	stack := requireStack(t)
	onOther, hostIP := otherMachine(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-published-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_HOST="+hostIP)
	hc := admin(t, doce, "sk-e2e-published")
	a := createProject(t, hc, doce, "published")
	b := createProject(t, hc, doce, "a neighbour")
	waitStatus(t, hc, doce, a.ID, "ready", 4*time.Minute)
	waitStatus(t, hc, doce, b.ID, "ready", 4*time.Minute)
	// A 503 says "try again in a few seconds" while doce first reaches the workspace; a client
	// does as it says.
	waitFor(t, "doce reaching the workspace's OpenCode", time.Minute, func() (bool, error) {
		status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+a.ID+"/sessions", nil)
		return status == http.StatusOK, fmt.Errorf("%d %s", status, body)
	})
	st := openStoreAt(t, doce)
	defer st.Close()
	p, err := st.Project(context.Background(), a.ID)
	if err != nil || p.HostPort == 0 || p.PreviewHostPort == 0 {
		t.Fatalf("published ports: %+v %v", p, err)
	}
	// An app on the preview port, so that a refusal there is the firewall's, not an empty port's.
	if out, err := exec.Command("docker", "exec", "-d", "-u", "1000:1000", "-w", "/tmp", "doce-"+a.ID+"-opencode",
		"python3", "-m", "http.server", "3000", "--bind", "0.0.0.0").CombinedOutput(); err != nil {
		t.Fatalf("start an app: %v %s", err, out)
	}
	// This host (where doce runs) reaches both: OpenCode asks for its password, the app answers.
	for port, want := range map[int]int{p.HostPort: http.StatusUnauthorized, p.PreviewHostPort: http.StatusOK} {
		waitFor(t, "the published port from doce's host", 30*time.Second, func() (bool, error) {
			resp, err := http.Get(fmt.Sprintf("http://%s:%d/", hostIP, port))
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == want, fmt.Errorf("status %d, want %d", resp.StatusCode, want)
		})
	}
	for _, port := range []int{p.HostPort, p.PreviewHostPort} {
		url := fmt.Sprintf("http://%s:%d/", hostIP, port)
		start := time.Now()
		out, err := onOther("curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url)
		took := time.Since(start)
		t.Logf("another machine to %s: %v %s in %s", url, err, out, took)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 7 || took >= 2*time.Second { // 7: could not connect
			t.Errorf("another machine reached %s, or was not refused at once (%s): %v %s", url, took, err, out)
		}
		r := probe(t, b.ID, "--noproxy", "*", url)
		t.Logf("another workspace to %s: curl exit %d in %s", url, r.rc, r.took)
		if r.rc != 7 || r.took >= 2*time.Second {
			t.Errorf("another workspace reached %s, or was not refused at once: %+v", url, r)
		}
	}
}

// TestLegacyNetworkReplaced: a workspace made before the egress rules sits on a network whose
// bridge Docker named, which the rules do not see. Starting it moves it onto a network made
// anew, with the bridge the rules match, and it runs there.
func TestLegacyNetworkReplaced(t *testing.T) {
	stack := requireStack(t)
	docker := dockerClient(t)
	ctx := context.Background()
	id := fmt.Sprintf("legacy-%d", time.Now().UnixNano())
	netName, name := "doce-"+id+"_default", "doce-"+id+"-opencode"
	labels := map[string]string{workspace.LabelProject: id, workspace.LabelManaged: "true"}
	t.Cleanup(func() { downWorkspace(id) })
	if _, err := docker.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		t.Fatal(err)
	}
	cfg, host := handContainer(stack.OpenCodeImage, "legacy-password", netName)
	cfg.Labels = labels
	if _, err := docker.ContainerCreate(ctx, cfg, host, nil, nil, name); err != nil {
		t.Fatal(err)
	}
	ws, err := workspace.NewManager("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, err := ws.Start(ctx, id); err != nil {
		t.Fatalf("start the legacy workspace: %v", err)
	}
	n, err := docker.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil || n.Options["com.docker.network.bridge.name"] != egress.BridgeName(netName) {
		t.Fatalf("the network after start: %v %v, want bridge %s", n.Options, err, egress.BridgeName(netName))
	}
	ci, err := docker.ContainerInspect(ctx, name)
	if err != nil || !ci.State.Running || ci.NetworkSettings.Networks[netName] == nil || ci.NetworkSettings.Networks[netName].NetworkID != n.ID {
		t.Fatalf("the workspace after start: running %v, networks %v, %v", ci.State != nil && ci.State.Running, ci.NetworkSettings.Networks, err)
	}
	nets, err := ws.Networks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, owner := range nets {
		found = found || owner == id
	}
	if !found {
		t.Errorf("the egress proxy does not know the moved workspace's network: %v", nets)
	}
}

// forgetFirewall removes the served-endpoint rules a doce on taskQueue left in the host's
// firewall: a worker keeps them when it stops (its workspaces still need them), but a test's
// doce does not come back.
// firewallServes reports whether a rule in doce's workspace chain lets workspaces reach port.
func firewallServes(port string) bool {
	out, _ := exec.Command("iptables", "-S", egress.ChainWorkspace).Output()
	return strings.Contains(string(out), "--dport "+port+" ")
}

func forgetFirewall(taskQueue string) {
	for _, host := range []string{"local", "a", "b"} { // the host names tests give their workers
		mark := "doce:" + egress.Tag(taskQueue, host)
		for _, chain := range []string{egress.ChainWorkspace, egress.ChainPublished} {
			out, err := exec.Command("iptables", "-S", chain).Output()
			if err != nil {
				continue
			}
			for _, line := range strings.Split(strings.ReplaceAll(string(out), `"`, ""), "\n") {
				if spec, ok := strings.CutPrefix(line, "-A "+chain+" "); ok && strings.Contains(spec, "--comment "+mark+" ") {
					exec.Command("iptables", append([]string{"-D", chain}, strings.Fields(spec)...)...).Run()
				}
			}
		}
	}
}
