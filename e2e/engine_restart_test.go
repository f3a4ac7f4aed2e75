package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFirewallSurvivesEngineRestart restarts the Docker engine under a running workspace: the
// workspace comes back (its restart policy) and still reaches what doce serves and nothing else
// on the host or the private ranges, because the rules live in doce's own chains and in
// DOCKER-USER, which a restarted engine keeps; and a rule removed behind doce's back is put back
// at the worker's next heartbeat. The test is not parallel: while it runs no other
// test has a workspace.
func TestFirewallSurvivesEngineRestart(t *testing.T) {
	stack := requireStack(t)
	pidfile := os.Getenv("DOCE_TEST_DOCKERD_PIDFILE")
	if pidfile == "" {
		t.Skip("restarts the Docker engine only when doce's scripts started it (make test)")
	}
	gw := hostGatewayIP(t)
	llm := startMockLLM(t, gw)
	unserved := listenOn(t, gw, "a host service")
	doce := startDoce(t, stack, fmt.Sprintf("e2e-engine-restart-%d", time.Now().UnixNano()))
	hc := admin(t, doce, "sk-e2e-engine-restart")
	p := createProject(t, hc, doce, "firewall across an engine restart")
	waitStatus(t, hc, doce, p.ID, "ready", 4*time.Minute)

	check := func(when string) {
		t.Helper()
		for what, url := range map[string]string{
			"the host's gateway on a port not served": "http://" + gw + ":" + unserved + "/",
			"10/8":             "http://10.254.254.254/",
			"metadata address": "http://169.254.169.254/latest/meta-data/",
		} {
			r := probe(t, p.ID, "--noproxy", "*", url)
			t.Logf("%s, direct to %s: curl exit %d, HTTP %d, %s", when, what, r.rc, r.status, r.took)
			if r.rc == 0 || r.took >= 2*time.Second {
				t.Errorf("%s, direct to %s: reached, or slow to fail (exit %d, %s):\n%s", when, what, r.rc, r.took, r.out)
			}
		}
		r := probe(t, p.ID, "--noproxy", "*", "http://host.docker.internal:"+llm.port()+"/v1/chat/completions")
		if r.rc != 0 {
			t.Errorf("%s: the mock LLM doce serves is not reached (exit %d):\n%s", when, r.rc, r.out)
		}
	}
	check("before the restart")

	restartEngine(t, pidfile)
	docker := dockerClient(t)
	waitFor(t, "the workspace running again", 2*time.Minute, func() (bool, error) {
		ci, err := docker.ContainerInspect(context.Background(), "doce-"+p.ID+"-opencode")
		if err != nil {
			return false, err
		}
		return ci.State.Running, fmt.Errorf("state %s", ci.State.Status)
	})
	check("after the restart")

	// A firewall reload that drops doce's jump is undone at the worker's next heartbeat.
	jump := []string{"DOCKER-USER", "-i", "doce+", "-j", "DOCE-WORKSPACE"}
	if out, err := exec.Command("iptables", append([]string{"-D"}, jump...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables -D %v: %v %s", jump, err, out)
	}
	waitFor(t, "the worker putting the jump back", 15*time.Second, func() (bool, error) {
		return exec.Command("iptables", append([]string{"-C"}, jump...)...).Run() == nil, errors.New("not back")
	})
	check("after the worker put the rules back")
	if status, body := apiCall(t, hc, doce.URL, "GET", "/api/v1/projects/"+p.ID, nil); status != http.StatusOK {
		t.Errorf("the project after the restart: %d %s", status, body)
	}
}

// restartEngine stops the dockerd whose pid is in pidfile and starts it again with the same
// command line, its output appended to the scripts' engine log, and waits until it answers.
func restartEngine(t *testing.T, pidfile string) {
	t.Helper()
	raw, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("%s: %v", pidfile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("the engine's command line: %v", err)
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if filepath.Base(args[0]) != "dockerd" {
		t.Fatalf("pid %d is %q, not dockerd", pid, args[0])
	}
	start := func() {
		logs, err := os.OpenFile(filepath.Join(filepath.Dir(pidfile), "logs", "dockerd.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		// Its own session, and no pipe of the test's: it outlives the test, as the scripts' did.
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Stdout, cmd.Stderr = logs, logs
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
	}
	dc := dockerClient(t)
	answers := func(within time.Duration) error {
		var err error
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = dc.Ping(ctx)
			cancel()
			if err == nil {
				return nil
			}
		}
		return err
	}
	// Whatever happens below, the tests after this one find an engine.
	t.Cleanup(func() {
		if answers(2*time.Second) != nil {
			start()
			if err := answers(time.Minute); err != nil {
				t.Errorf("the Docker engine does not answer after the test: %v", err)
			}
		}
	})

	began := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd (pid %d) did not stop within 2 minutes", pid)
		}
	}
	stopped := time.Since(began)
	start()
	if err := answers(time.Minute); err != nil {
		t.Fatalf("the restarted engine does not answer: %v", err)
	}
	t.Logf("engine stopped in %s, answering again %s later", stopped.Round(100*time.Millisecond), (time.Since(began) - stopped).Round(100*time.Millisecond))
}
