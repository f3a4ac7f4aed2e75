package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listenOn serves body over HTTP on host (a free port) until the test ends, and returns its
// port.
func listenOn(t *testing.T, host, body string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
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

var probeLine = regexp.MustCompile(`rc=(\d+) ms=(\d+) code=(\d+)`)

// probe runs curl with args in the project's workspace, as the agent's user, and times it there.
func probe(t *testing.T, projectID string, args ...string) probeResult {
	t.Helper()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	script := `s=$(date +%s%N); body=$(curl -sS -m 5 -w '\n%{http_code}' ` + strings.Join(quoted, " ") + ` 2>&1); rc=$?; ` +
		`e=$(date +%s%N); code=$(printf '%s' "$body" | tail -n 1); echo "rc=$rc ms=$(( (e-s)/1000000 )) code=$code"; printf '%s' "$body" | head -c 400`
	out, err := exec.Command("docker", "exec", "-u", "1000:1000", "doce-"+projectID+"-opencode", "bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("docker exec: %v\n%s", err, out)
	}
	m := probeLine.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("probe printed no result: %s", out)
	}
	r := probeResult{out: string(out)}
	r.rc, _ = strconv.Atoi(m[1])
	ms, _ := strconv.Atoi(m[2])
	r.took = time.Duration(ms) * time.Millisecond
	r.status, _ = strconv.Atoi(m[3])
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
	reached("the mock LLM doce serves", "", "--noproxy", "*", "-o", "/dev/null", llmURL)
	reached("the mock LLM, by a client that ignores NO_PROXY", "", "--noproxy", "", "-o", "/dev/null", "http://"+gw+":"+llm.port()+"/v1/chat/completions")

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
	reached("open: the destination, through the proxy", "the allowed destination", allowedURL)

	setEgress("allow-list", gw)
	reached("allow-list: the listed destination", "the allowed destination", allowedURL)
	reached("allow-list: the listed destination, tunnelled (CONNECT)", "the allowed destination", "-p", allowedURL)
	blocked("allow-list: a host not listed (refused before any lookup)", "http://example.com/")
	blocked("allow-list: the listed destination, directly", direct(allowedURL)...)

	setEgress("off")
	blocked("off: the listed destination", allowedURL)
	blocked("off: the listed destination, tunnelled (CONNECT)", "-p", allowedURL)
	reached("off: the mock LLM doce serves", "", "--noproxy", "*", "-o", "/dev/null", llmURL)

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
