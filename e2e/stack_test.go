// Package e2e drives the doce binary end to end against the real stack: a Temporal dev server,
// a Vault server, the Docker engine and the OpenCode image. scripts/test.sh (make test) starts
// the servers and passes their addresses in DOCE_TEST_* variables.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/temporalproto"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// stackEnv is where the real services listen.
type stackEnv struct {
	TemporalAddress string
	VaultAddr       string
	VaultToken      string
	OpenCodeImage   string
}

// requireStack returns the stack's addresses. Outside make test they are missing: the test is
// skipped, unless DOCE_TEST_STACK=1 says they must be there.
func requireStack(t testing.TB) stackEnv {
	t.Helper()
	env := stackEnv{
		TemporalAddress: os.Getenv("DOCE_TEST_TEMPORAL_ADDRESS"),
		VaultAddr:       os.Getenv("DOCE_TEST_VAULT_ADDR"),
		VaultToken:      os.Getenv("DOCE_TEST_VAULT_TOKEN"),
		OpenCodeImage:   os.Getenv("DOCE_TEST_OPENCODE_IMAGE"),
	}
	if env.TemporalAddress == "" || env.VaultAddr == "" || env.VaultToken == "" || env.OpenCodeImage == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but the DOCE_TEST_* stack addresses are missing")
		}
		t.Skip("needs the real stack: run `make test`")
	}
	return env
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// doceBinary builds cmd/doce once per test run.
func doceBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "doce-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "doce")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/doce").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer collects a process's output safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// doceProcess is doce running for a test, with its own data dir, port and task queue: either
// one `doce dev`, or `doce serve` and `doce worker` apart so the worker can be killed.
type doceProcess struct {
	URL     string
	DataDir string
	// MetricsURL is where the web tier (dev or serve) serves /metrics: DOCE_METRICS_ADDR, apart
	// from the web port.
	MetricsURL string
	// Database is what store.Open takes for this doce's database: the SQLite file in DataDir,
	// or the PostgreSQL URL a test gave as DOCE_DATABASE_URL (see onPostgres).
	Database string
	Env      []string
	Logs     *syncBuffer
	procs    map[string]*childProcess
}

type childProcess struct {
	cmd    *exec.Cmd
	exited chan error
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrOn(t, "127.0.0.1")
}

// freeAddrOn is a free port on the address ip, host:port.
func freeAddrOn(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freePort is a TCP port nothing listens on now.
func freePort(t testing.TB) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// startDoce migrates a fresh database and starts `doce dev` until the test ends. extraEnv
// entries (KEY=value) override the defaults.
func startDoce(t testing.TB, stack stackEnv, taskQueue string, extraEnv ...string) *doceProcess {
	t.Helper()
	p := newDoce(t, stack, taskQueue, extraEnv)
	p.start(t, "dev")
	p.waitHealthy(t)
	return p
}

// startDoceSplit is startDoce with the web tier and the worker in two processes.
func startDoceSplit(t testing.TB, stack stackEnv, taskQueue string, extraEnv ...string) *doceProcess {
	t.Helper()
	p := newDoce(t, stack, taskQueue, extraEnv)
	p.start(t, "serve")
	p.start(t, "worker")
	p.waitHealthy(t)
	return p
}

// testDNS is the name server test workspaces use: loopback, where nothing answers on port 53,
// so no lookup (and so no connection by name) leaves the machine.
const testDNS = "127.0.0.1"

func newDoce(t testing.TB, stack stackEnv, taskQueue string, extraEnv []string) *doceProcess {
	t.Helper()
	addr := freeAddr(t)
	p := &doceProcess{URL: "http://" + addr, MetricsURL: "http://" + freeAddr(t), DataDir: t.TempDir(), Logs: &syncBuffer{}, procs: map[string]*childProcess{}}
	p.Env = append(os.Environ(),
		"DOCE_HTTP_ADDR="+addr,
		"DOCE_DATA_DIR="+p.DataDir,
		"DOCE_LOG_FORMAT=json",
		"DOCE_LOG_LEVEL=debug",
		"DOCE_TASK_QUEUE="+taskQueue,
		"TEMPORAL_ADDRESS="+stack.TemporalAddress,
		"VAULT_ADDR="+stack.VaultAddr,
		"VAULT_TOKEN="+stack.VaultToken,
		"DOCE_OPENCODE_IMAGE="+stack.OpenCodeImage,
		// Workspaces ask a name server on this machine that does not answer, so whatever
		// OpenCode would look up on the internet (models.dev, a provider's API) stays here.
		"DOCE_WORKSPACE_DNS="+testDNS,
		// The outbound policy refuses doce's own machine and networks; the tests' stand-ins live
		// on exactly these two: the mock LLM on the Docker bridge's gateway (what
		// host.docker.internal is) and well-known and OAuth servers on loopback.
		"DOCE_ALLOWED_PRIVATE_HOSTS=127.0.0.1,"+hostGatewayIP(t),
		// No prebuilt workspaces unless a test asks: each would be one more OpenCode starting.
		"DOCE_WORKSPACE_POOL=0",
		// Workspaces reach the stand-ins started so far, and an egress proxy of this doce's own,
		// which lets nothing out unless a test opens a project: it would resolve names here.
		served.env(),
		"DOCE_WORKSPACE_EGRESS=off",
		// Tests make many projects as one user; TestQuotas sets its own quotas.
		"DOCE_QUOTA_PROJECTS=0", "DOCE_QUOTA_RUNNING=0", "DOCE_QUOTA_CREATE_PER_HOUR=0",
		"DOCE_EGRESS_PROXY_PORT="+freePort(t),
		// The LLM gateway where workspaces reach it (host.docker.internal), on a port of its own.
		"DOCE_GATEWAY_ADDR="+freeAddrOn(t, hostGatewayIP(t)),
	)
	p.Env = append(p.Env, extraEnv...)
	p.Database = filepath.Join(p.DataDir, "doce.db")
	if u := envOf(extraEnv, "DOCE_DATABASE_URL"); u != "" {
		p.Database = u
	}
	migrate := exec.Command(doceBinary(t), "migrate")
	migrate.Env = p.Env
	out, err := migrate.CombinedOutput()
	if err != nil {
		t.Fatalf("doce migrate: %v\n%s", err, out)
	}
	p.Logs.Write(out)
	t.Cleanup(func() {
		for _, c := range p.procs {
			c.stop()
		}
		if t.Failed() {
			t.Logf("doce logs:\n%s", p.Logs.String())
		}
		// Only once doce is stopped: a worker still running could bring a workspace back.
		p.removeWorkspaces(t)
		forgetFirewall(taskQueue)
	})
	return p
}

// onPostgres is the extraEnv that runs a doce on a new database of its own on the test
// PostgreSQL server.
func onPostgres(t testing.TB) string {
	return "DOCE_DATABASE_URL=" + storetest.NewDatabase(t, storetest.Postgres)
}

// databaseEnv is the extraEnv for a doce on dialect (storetest.SQLite needs none).
func databaseEnv(t testing.TB, dialect string) []string {
	if dialect == storetest.Postgres {
		return []string{onPostgres(t)}
	}
	return nil
}

// removeWorkspaces removes the Docker objects of every project and pooled workspace this doce
// made, whatever state the test left them in, so no test leaves networks for the next to run
// out of.
func (p *doceProcess) removeWorkspaces(t testing.TB) {
	st, err := store.Open(p.Database)
	if err != nil {
		t.Logf("workspaces left behind: %v", err)
		return
	}
	defer st.Close()
	var ids []string
	for _, table := range []string{"projects", "pool_workspaces"} {
		var more []string
		if err := st.DB.NewSelect().Table(table).Column("id").Scan(context.Background(), &more); err != nil {
			t.Logf("workspaces left behind: %v", err)
		}
		ids = append(ids, more...)
	}
	for _, id := range ids {
		downWorkspace(id)
	}
}

// start runs `doce <command>` until the test ends or kill9 stops it.
func (p *doceProcess) start(t testing.TB, command string) {
	t.Helper()
	p.startAs(t, command, command)
}

// startAs runs `doce <command>` under name (kill9 and stop take it) with env added to doce's,
// e.g. a second worker serving another Docker host.
func (p *doceProcess) startAs(t testing.TB, name, command string, env ...string) {
	t.Helper()
	cmd := exec.Command(doceBinary(t), command)
	cmd.Env = append([]string{}, p.Env...)
	if command == "dev" || command == "serve" { // a worker alone serves none here
		cmd.Env = append(cmd.Env, "DOCE_METRICS_ADDR="+strings.TrimPrefix(p.MetricsURL, "http://"))
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childProcess{cmd: cmd, exited: make(chan error, 1)}
	go func() { c.exited <- cmd.Wait() }()
	p.procs[name] = c
}

// kill9 kills the process started as name with SIGKILL, as a crash would.
func (p *doceProcess) kill9(t testing.TB, name string) {
	t.Helper()
	c := p.procs[name]
	c.cmd.Process.Kill()
	<-c.exited
	delete(p.procs, name)
}

func (c *childProcess) stop() {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(40 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

func (p *doceProcess) waitHealthy(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		for name, c := range p.procs {
			select {
			case err := <-c.exited:
				c.exited <- err // for the cleanup's stop, which would otherwise wait forever
				t.Fatalf("doce %s exited: %v\n%s", name, err, p.Logs.String())
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("doce did not answer on %s within 30s\n%s", p.URL, p.Logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordingClient is an HTTP client with a cookie jar that keeps every response body it read,
// so a test can check no secret ever came back.
type recordingClient struct {
	*http.Client
	mu     sync.Mutex
	bodies []string
}

func newClient(t testing.TB) *recordingClient {
	jar, _ := cookiejar.New(nil)
	rc := &recordingClient{}
	rc.Client = &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		Transport:     recordTransport{rc},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return rc
}

type recordTransport struct{ rc *recordingClient }

func (rt recordTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	rt.rc.mu.Lock()
	var hdr strings.Builder
	resp.Header.Write(&hdr)
	rt.rc.bodies = append(rt.rc.bodies, hdr.String()+"\n"+string(b))
	rt.rc.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func (rc *recordingClient) responses() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return strings.Join(rc.bodies, "\n")
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s (last error: %v)", what, timeout, lastErr)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// recordHistory writes a run's history as JSON into $DOCE_RECORD_HISTORY/name, when set. The
// replay tests in workflows/ run over histories recorded this way.
func recordHistory(t testing.TB, stack stackEnv, workflowID, name string) {
	t.Helper()
	dir := os.Getenv("DOCE_RECORD_HISTORY")
	if dir == "" {
		return
	}
	// Recorded decoded, so the replay tests need no Vault; they replay these through the codec,
	// as workers replay histories recorded before payloads were encrypted.
	hist := fetchHistory(t, decodingOptions(t, stack), workflowID)
	b, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
