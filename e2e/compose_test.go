package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
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
		"DOCE_TASK_QUEUE="+project, "DOCE_OPENCODE_IMAGE="+stack.OpenCodeImage, "DOCKER_GID="+gid, "DOCE_WORKSPACE_POOL=0")
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
	compose("run", "--rm", "doce-migrate")
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
		return strings.TrimSpace(string(out)) == "healthy", fmt.Errorf("health %q %v", strings.TrimSpace(string(out)), err)
	})
	// The workers' healthcheck (a file each keeps fresh, read by doce probe) passes.
	workerIDs := strings.Fields(compose("ps", "-q", "doce-worker"))
	if len(workerIDs) != 2 {
		t.Fatalf("%d workers running, want 2", len(workerIDs))
	}
	for _, id := range workerIDs {
		waitFor(t, "doce-worker healthy", time.Minute, func() (bool, error) {
			out, err := exec.Command("docker", "inspect", "-f", "{{.State.Health.Status}}", id).Output()
			return strings.TrimSpace(string(out)) == "healthy", fmt.Errorf("health %q %v", strings.TrimSpace(string(out)), err)
		})
	}
	size, _ := exec.Command("docker", "image", "inspect", "-f", "{{.Size}}", image).Output()
	t.Logf("doce image %s bytes; serve and worker ready %s after docker-compose up", strings.TrimSpace(string(size)), ready.Round(10*time.Millisecond))
	hc := admin(t, doce, "sk-e2e-compose")
	p := createProject(t, hc, doce, "set up by containers")
	waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
}
