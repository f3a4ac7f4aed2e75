package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// giteaEnv is the real Gitea the forge tests share: one per test run of this package, started
// by the first test that asks for it (requireGitea) and stopped when the package's tests end
// (TestMain).
type giteaEnv struct {
	URL      string // http://127.0.0.1:<port>, no trailing slash
	Admin    string // the administrator's user name
	Password string
	Token    string // the administrator's access token, every scope
}

var gitea struct {
	once sync.Once
	env  giteaEnv
	err  error
	stop func()
}

// TestMain stops the shared Gitea after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if gitea.stop != nil {
		gitea.stop()
	}
	os.Exit(code)
}

// requireGitea starts the shared Gitea on first use. It needs the binary scripts/tools.sh
// builds (make test passes it as DOCE_TEST_GITEA).
func requireGitea(t testing.TB) giteaEnv {
	t.Helper()
	bin := os.Getenv("DOCE_TEST_GITEA")
	if bin == "" {
		if os.Getenv("DOCE_TEST_STACK") == "1" {
			t.Fatal("DOCE_TEST_STACK=1 but DOCE_TEST_GITEA is not set")
		}
		t.Skip("needs a Gitea: run `make test`")
	}
	gitea.once.Do(func() {
		start := time.Now()
		gitea.env, gitea.stop, gitea.err = startGitea(bin)
		if gitea.err == nil {
			t.Logf("gitea up at %s in %s", gitea.env.URL, time.Since(start).Round(10*time.Millisecond))
		}
	})
	if gitea.err != nil {
		t.Fatal(gitea.err)
	}
	return gitea.env
}

// giteaConfig is a headless Gitea: installed (INSTALL_LOCK), SQLite, loopback only, no SSH,
// mail, cron, indexers or calls out (OFFLINE_MODE), in-process queues, sessions and cache.
// STATIC_ROOT_PATH is the folder holding the options/ that tools.sh copies beside the binary.
const giteaConfig = `APP_NAME = doce tests
RUN_MODE = prod
RUN_USER = {{user}}
WORK_PATH = {{dir}}
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = {{port}}
ROOT_URL = http://127.0.0.1:{{port}}/
DOMAIN = 127.0.0.1
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false
STATIC_ROOT_PATH = {{static}}
APP_DATA_PATH = {{dir}}/data

[database]
DB_TYPE = sqlite3
PATH = {{dir}}/gitea.db

[repository]
ROOT = {{dir}}/repositories

[security]
INSTALL_LOCK = true
SECRET_KEY = {{secret}}

[service]
DISABLE_REGISTRATION = true

[queue]
TYPE = channel

[cron]
ENABLED = false

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[indexer]
REPO_INDEXER_ENABLED = false

[mailer]
ENABLED = false

[log]
MODE = console
LEVEL = warn
ROOT_PATH = {{dir}}/log
`

// startGitea writes the configuration, migrates the database, creates the administrator and
// its token, starts `gitea web` and waits until its API answers. stop ends it and removes its
// folder.
func startGitea(bin string) (giteaEnv, func(), error) {
	dir, err := os.MkdirTemp("", "doce-gitea-")
	if err != nil {
		return giteaEnv{}, nil, err
	}
	fail := func(err error) (giteaEnv, func(), error) {
		os.RemoveAll(dir)
		return giteaEnv{}, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	me, err := user.Current()
	if err != nil {
		return fail(err)
	}
	ini := strings.NewReplacer("{{user}}", me.Username, "{{dir}}", dir, "{{port}}", port,
		"{{static}}", filepath.Dir(bin), "{{secret}}", randomHex(16)).Replace(giteaConfig)
	conf := filepath.Join(dir, "app.ini")
	if err := os.WriteFile(conf, []byte(ini), 0o600); err != nil {
		return fail(err)
	}
	// Gitea runs git, which reads the user's configuration: give it a home of its own.
	env := append(os.Environ(), "HOME="+dir, "GITEA_WORK_DIR="+dir, "USER="+me.Username)
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append(args, "--config", conf)...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("gitea %s: %w\n%s", args[0], err, out)
		}
		return string(out), nil
	}
	if _, err := run("migrate"); err != nil {
		return fail(err)
	}
	g := giteaEnv{URL: "http://127.0.0.1:" + port, Admin: "doce-admin", Password: "admin-" + randomHex(8)}
	out, err := run("admin", "user", "create", "--admin", "--username", g.Admin, "--password", g.Password,
		"--email", "admin@example.com", "--must-change-password=false", "--access-token", "--access-token-scopes", "all")
	if err != nil {
		return fail(err)
	}
	// It prints "Access token was successfully created: <40 hex digits>".
	m := regexp.MustCompile(`\b[0-9a-f]{40}\b`).FindString(out)
	if m == "" {
		return fail(fmt.Errorf("gitea admin user create printed no token:\n%s", out))
	}
	g.Token = m

	logs := &syncBuffer{}
	web := exec.Command(bin, "web", "--config", conf)
	web.Env, web.Dir, web.Stdout, web.Stderr = env, dir, logs, logs
	web.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its git children end with it
	if err := web.Start(); err != nil {
		return fail(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- web.Wait() }()
	stop := func() {
		_ = syscall.Kill(-web.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-web.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			os.RemoveAll(dir)
			return giteaEnv{}, nil, fmt.Errorf("gitea web exited: %w\n%s", err, logs.String())
		default:
		}
		if giteaAnswers(g.URL) {
			return g, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return giteaEnv{}, nil, errors.New("gitea web did not answer within 60 s:\n" + logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func giteaAnswers(base string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/api/v1/version")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
