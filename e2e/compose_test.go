package e2e

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql's "pgx", to make and check roles

	"github.com/doce-dev/doce/store/storetest"
)

// TestComposeFileIsValid checks docker-compose.yml with docker-compose itself: it parses, has
// every service of the production stack, and refuses to run without a Vault token.
func TestComposeFileIsValid(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("docker-compose is not installed (scripts/tools.sh installs it)")
		}
		t.Skip("needs docker-compose: run `make test`")
	}
	compose := func(env []string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"-f", "../docker-compose.yml"}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	out, err := compose(append(base, "VAULT_TOKEN=test"), "config", "--services")
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	for _, svc := range []string{"postgresql", "temporal", "temporal-ui", "vault", "doce-migrate", "doce-serve", "doce-worker"} {
		if !strings.Contains(out, svc+"\n") {
			t.Errorf("service %s missing from docker-compose.yml", svc)
		}
	}
	out, err = compose(append(base, "VAULT_TOKEN=test"), "config")
	if err != nil {
		t.Fatal(err)
	}
	// Only the worker may reach the Docker socket.
	if n := strings.Count(out, "/var/run/docker.sock"); n != 2 { // source and target of one mount
		t.Errorf("the Docker socket appears %d times, want one mount (the worker's)", n/2)
	}
	// Vault sign-in is an AppRole in production: the role files are mounted and passed on.
	out, err = compose(append(base, "DOCE_VAULT_APPROLE_DIR=/srv/doce-vault", "VAULT_ROLE_ID_FILE=/etc/doce/vault/role-id"), "config")
	if err != nil || !strings.Contains(out, "/srv/doce-vault") || !strings.Contains(out, "VAULT_ROLE_ID_FILE: /etc/doce/vault/role-id") {
		t.Errorf("AppRole settings not passed on: %v\n%s", err, out)
	}
	// doce on the compose file's PostgreSQL: the URL reaches every doce service, and the
	// postgresql service runs the script that makes doce's role and database.
	const dbURL = "postgres://doce:pw@127.0.0.1:5432/doce?sslmode=disable"
	out, err = compose(append(base, "VAULT_TOKEN=test", "DOCE_DATABASE_URL="+dbURL), "config")
	if err != nil || strings.Count(out, "DOCE_DATABASE_URL: "+dbURL) != 3 || !strings.Contains(out, "/docker-entrypoint-initdb.d/init-doce.sh") {
		t.Errorf("DOCE_DATABASE_URL not passed to doce-migrate, doce-serve and doce-worker, or the init script not mounted: %v\n%s", err, out)
	}
}

// TestComposePostgresInitScript runs deploy/postgres/init-doce.sh as the postgres image would
// (psql as the superuser, DOCE_DB_* in the environment) against the test PostgreSQL server,
// then migrates and serves doce as the role it made, in the database it made.
func TestComposePostgresInitScript(t *testing.T) {
	stack := requireStack(t)
	server, err := url.Parse(storetest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	role, db, password := "doce_compose_"+suffix, "doce_compose_"+suffix, "pw-"+suffix
	superPW, _ := server.User.Password()
	cmd := exec.Command("bash", "../deploy/postgres/init-doce.sh")
	cmd.Env = append(os.Environ(), "PGHOST="+server.Hostname(), "PGPORT="+server.Port(), "PGPASSWORD="+superPW,
		"POSTGRES_USER="+server.User.Username(), "POSTGRES_DB=postgres",
		"DOCE_DB_USER="+role, "DOCE_DB_NAME="+db, "DOCE_DB_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init-doce.sh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", server.String())
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)")
		admin.Exec("DROP ROLE IF EXISTS " + role)
	})
	dbURL := &url.URL{Scheme: "postgres", User: url.UserPassword(role, password), Host: server.Host, Path: "/" + db, RawQuery: "sslmode=disable"}
	doce := newDoce(t, stack, "compose-pg-"+suffix, []string{"DOCE_DATABASE_URL=" + dbURL.String()})
	doce.start(t, "serve")
	doce.waitHealthy(t)
	hc := newClient(t)
	if status, body := apiCall(t, hc, doce.URL, "GET", "/readyz", nil); status != http.StatusOK || !strings.Contains(string(body), `"status":"ready"`) {
		t.Fatalf("/readyz on the init script's database: %d %s", status, body)
	}
	// The database is doce's alone: another login role (Temporal's, say) may not connect.
	admin, err := sql.Open("pgx", server.String())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	otherRole := "other_" + suffix
	if _, err := admin.Exec("CREATE ROLE " + otherRole + " LOGIN PASSWORD 'other'"); err != nil {
		t.Fatal(err)
	}
	defer admin.Exec("DROP ROLE IF EXISTS " + otherRole)
	otherURL := &url.URL{Scheme: "postgres", User: url.UserPassword(otherRole, "other"), Host: server.Host, Path: "/" + db, RawQuery: "sslmode=disable"}
	other, err := sql.Open("pgx", otherURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Ping(); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("another role connecting to doce's database: %v, want permission denied", err)
	}
}

// TestComposeRunsDoce builds doce's image and runs its services from docker-compose.yml
// (migrate, then serve and a worker holding the Docker socket) against the test stack's
// Temporal and Vault, whose images this machine cannot pull; a project set up through the
// containerised doce becomes ready.
func TestComposeRunsDoce(t *testing.T) {
	stack := requireStack(t)
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Fatal("docker-compose is not installed (scripts/tools.sh installs it)")
	}
	n := time.Now().UnixNano()
	image, project := fmt.Sprintf("doce/doce:e2e-%d", n), fmt.Sprintf("doce-e2e-%d", n)
	build := exec.Command("bash", "../scripts/doce-image.sh")
	build.Env = append(os.Environ(), "DOCE_IMAGE="+image)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/doce-image.sh: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	gid := "0"
	if fi, err := os.Stat("/var/run/docker.sock"); err == nil {
		gid = fmt.Sprint(fi.Sys().(*syscall.Stat_t).Gid)
	}
	// Vault as the README sets it up for production: an AppRole under the service policy,
	// its files readable by the image's user only.
	approle := t.TempDir()
	setup := exec.Command("bash", "../scripts/vault-approle.sh", stack.VaultAddr, approle, "65532")
	setup.Env = append(os.Environ(), "VAULT_TOKEN="+stack.VaultToken)
	if out, err := setup.CombinedOutput(); err != nil {
		t.Fatalf("scripts/vault-approle.sh: %v\n%s", err, out)
	}
	env := append(os.Environ(),
		"DOCE_IMAGE="+image, "VAULT_TOKEN=", "VAULT_ADDR="+stack.VaultAddr, "DOCE_VAULT_APPROLE_DIR="+approle,
		"VAULT_ROLE_ID_FILE=/etc/doce/vault/role-id", "VAULT_SECRET_ID_FILE=/etc/doce/vault/secret-id",
		"TEMPORAL_ADDRESS="+stack.TemporalAddress, "DOCE_HTTP_ADDR="+addr, "DOCE_BASE_URL=http://"+addr,
		"DOCE_TASK_QUEUE="+project, "DOCE_OPENCODE_IMAGE="+stack.OpenCodeImage, "DOCKER_GID="+gid, "DOCE_WORKSPACE_POOL=0",
		// As the compose file asks: this engine's docker0 is not Docker's usual 172.17.0.1. Free
		// ports for the gateway and the egress proxy, since other tests share the bridge.
		"DOCE_HOST_GATEWAY="+hostGatewayIP(t), "DOCE_GATEWAY_ADDR=host-gateway:"+freePort(t), "DOCE_EGRESS_PROXY_PORT="+freePort(t))
	compose := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-f", "../docker-compose.yml", "-p", project}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		if t.Failed() {
			cmd := exec.Command(bin, "-f", "../docker-compose.yml", "-p", project, "logs", "--no-color", "doce-serve", "doce-worker")
			cmd.Env = env
			out, _ := cmd.CombinedOutput()
			t.Logf("compose logs:\n%s", out)
		}
		cmd := exec.Command(bin, "-f", "../docker-compose.yml", "-p", project, "down", "-v", "--remove-orphans")
		cmd.Env = env
		cmd.Run()
		exec.Command("docker", "image", "rm", "-f", image).Run()
	})
	compose("run", "--rm", "--no-deps", "doce-migrate")
	start := time.Now()
	// Two workers, as the README's --scale: on the host's network they share no port.
	compose("up", "-d", "--no-deps", "--scale", "doce-worker=2", "doce-serve", "doce-worker")

	doce := &doceProcess{URL: "http://" + addr}
	waitFor(t, "containerised doce ready", time.Minute, func() (bool, error) {
		resp, err := http.Get(doce.URL + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("/readyz: %d", resp.StatusCode)
	})
	ready := time.Since(start)
	// The compose healthcheck (doce probe .../readyz inside the image) passes too.
	serveID := strings.TrimSpace(compose("ps", "-q", "doce-serve"))
	waitFor(t, "doce-serve healthy", time.Minute, func() (bool, error) {
		out, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", serveID).Output()
		return strings.TrimSpace(string(out)) == "healthy", fmt.Errorf("health %q %w", strings.TrimSpace(string(out)), err)
	})
	// The workers' healthcheck (a file each keeps fresh, read by doce probe) passes.
	workerIDs := strings.Fields(compose("ps", "-q", "doce-worker"))
	if len(workerIDs) != 2 {
		t.Fatalf("%d workers running, want 2", len(workerIDs))
	}
	for _, id := range workerIDs {
		waitFor(t, "doce-worker healthy", time.Minute, func() (bool, error) {
			out, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", id).Output()
			return strings.TrimSpace(string(out)) == "healthy", fmt.Errorf("health %q %w", strings.TrimSpace(string(out)), err)
		})
	}
	size, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", image).Output()
	t.Logf("doce image %s bytes; serve and worker ready %s after docker-compose up", strings.TrimSpace(string(size)), ready.Round(10*time.Millisecond))
	hc := admin(t, doce, "sk-e2e-compose")
	p := createProject(t, hc, doce, "set up by containers")
	// Its database is in a compose volume, out of reach of the clean-up of a doce the test runs.
	t.Cleanup(func() { downWorkspace(p.ID) })
	waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
}
