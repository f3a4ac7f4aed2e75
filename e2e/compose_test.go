package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
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
	if out, err := compose(base, "config", "-q"); err == nil || !strings.Contains(out, "set VAULT_TOKEN") {
		t.Errorf("without VAULT_TOKEN docker-compose config said %v:\n%s", err, out)
	}
}
