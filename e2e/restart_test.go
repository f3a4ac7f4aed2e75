package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"go.temporal.io/sdk/client"
)

// Restart tests stop a server the setup depends on in the middle of a setup and start it
// again; they run servers of their own, with storage that survives the restart.

// server is a child process the test can stop and start again.
type server struct {
	name string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	logs *syncBuffer
}

func startServer(t *testing.T, name string, args ...string) *server {
	t.Helper()
	s := &server{name: name, args: args, logs: &syncBuffer{}}
	s.start(t)
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, s.logs.String())
		}
	})
	return s
}

func (s *server) start(t *testing.T) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
}

func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

func requireBin(t *testing.T, env string) string {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatalf("DOCE_TEST_STACK=1 but %s is missing", env)
		}
		t.Skip("needs " + env + ": run `make test`")
	}
	return bin
}

// startTemporal runs a Temporal dev server keeping its state in a SQLite file.
func startTemporal(t *testing.T) (*server, string) {
	t.Helper()
	bin := requireBin(t, "DOCE_TEST_TEMPORAL_BIN")
	addr := freeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	s := startServer(t, "temporal", bin, "server", "start-dev", "--headless", "--ip", host, "--port", port,
		"--db-filename", filepath.Join(t.TempDir(), "temporal.db"), "--log-level", "warn")
	waitTemporal(t, addr)
	return s, addr
}

func waitTemporal(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "temporal up", time.Minute, func() (bool, error) {
		c, err := client.Dial(client.Options{HostPort: addr, Logger: quietLogger{}})
		if err != nil {
			return false, err
		}
		defer c.Close()
		_, err = c.CheckHealth(context.Background(), &client.CheckHealthRequest{})
		return err == nil, err
	})
}

// startVault runs a Vault server with file storage, initialised and unsealed; it returns the
// unseal key and root token.
func startVault(t *testing.T) (s *server, addr, unsealKey, rootToken string) {
	t.Helper()
	bin := requireBin(t, "DOCE_TEST_VAULT_BIN")
	dir := t.TempDir()
	listen := freeAddr(t)
	addr = "http://" + listen
	hcl := fmt.Sprintf("storage \"file\" { path = %q }\nlistener \"tcp\" {\n  address = %q\n  tls_disable = true\n}\ndisable_mlock = true\n", filepath.Join(dir, "data"), listen)
	if err := os.WriteFile(filepath.Join(dir, "vault.hcl"), []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	s = startServer(t, "vault", bin, "server", "-config="+filepath.Join(dir, "vault.hcl"))
	vc := vaultClient(t, addr)
	waitFor(t, "vault listening", 30*time.Second, func() (bool, error) {
		_, err := vc.Sys().InitStatus()
		return err == nil, err
	})
	init, err := vc.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	unsealVault(t, addr, init.KeysB64[0])
	return s, addr, init.KeysB64[0], init.RootToken
}

func vaultClient(t *testing.T, addr string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	vc, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return vc
}

func unsealVault(t *testing.T, addr, key string) {
	t.Helper()
	vc := vaultClient(t, addr)
	waitFor(t, "vault unsealed", 30*time.Second, func() (bool, error) {
		st, err := vc.Sys().Unseal(key)
		if err != nil {
			return false, err
		}
		return !st.Sealed, nil
	})
}

// TestTemporalRestartedMidSetup restarts the Temporal server while the setup waits for
// OpenCode: the setup completes once both are back.
func TestTemporalRestartedMidSetup(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	temporal, addr := startTemporal(t)
	stack.TemporalAddress = addr
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, "e2e-temporal-restart", "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-temporal-restart")

	held, release := proxy.hold("GET", "/global/health")
	defer release()
	start := time.Now()
	p := createProject(t, hc, doce, "temporal restart")
	<-held
	temporal.stop()
	time.Sleep(3 * time.Second)
	temporal.start(t)
	waitTemporal(t, addr)
	release()
	waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
	assertOneOfEach(t, docker, p.ID, "temporal restart")
	t.Logf("Temporal restarted mid-setup: completed in %s", time.Since(start).Round(100*time.Millisecond))
}

// TestVaultStoppedMidSetup stops Vault for 30 s while the setup waits for OpenCode, so the
// next step finds it gone: the step waits it out and the setup completes in one run.
func TestVaultStoppedMidSetup(t *testing.T) {
	t.Parallel() // mostly waiting on timers, retries and restarts: runs beside the others like it
	stack := requireStack(t)
	docker := dockerClient(t)
	vaultSrv, addr, unsealKey, token := startVault(t)
	stack.VaultAddr, stack.VaultToken = addr, token
	proxy := startFaultProxy(t)
	doce := startDoce(t, stack, fmt.Sprintf("e2e-vault-stop-%d", time.Now().UnixNano()), "DOCE_WORKSPACE_PROXY="+proxy.URL)
	hc := admin(t, doce, "sk-e2e-vault-stop")

	held, release := proxy.hold("GET", "/global/health")
	defer release()
	start := time.Now()
	p := createProject(t, hc, doce, "vault stop")
	<-held
	vaultSrv.stop()
	release() // OpenCode answers; the next step needs Vault, which is gone
	time.Sleep(30 * time.Second)
	if got := getProject(t, hc, doce, p.ID); got.Status != "setting-up" {
		t.Fatalf("during the outage the project is %s at %s: %s", got.Status, got.SetupStep, got.SetupError)
	}
	vaultSrv.start(t)
	unsealVault(t, addr, unsealKey)
	waitStatus(t, hc, doce, p.ID, "ready", 3*time.Minute)
	assertOneOfEach(t, docker, p.ID, "vault stop")
	t.Logf("Vault stopped 30 s mid-setup: completed in %s", time.Since(start).Round(100*time.Millisecond))
}
