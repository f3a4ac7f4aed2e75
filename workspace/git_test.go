package workspace

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMergeScript runs the script Merge runs in a workspace, here on a repository of the test's
// own, fed a bundle of a base as doce makes it: the base is merged and the counts read; a base
// that changed the same lines is aborted, the files named and the tree left as it was; a hook
// of the repository never runs.
func TestMergeScript(t *testing.T) {
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := func(dir, file, content string) {
		t.Helper()
		os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644)
		git(dir, "add", ".")
		git(dir, "-c", "core.hooksPath=/dev/null", "commit", "-q", "-m", "change "+file) // the test's own commits run no hook
	}
	forge, work := t.TempDir(), t.TempDir()
	git(forge, "init", "-q", "-b", "main")
	commit(forge, "a.txt", "one\n")
	git(work, "clone", "-q", forge, ".")
	git(work, "checkout", "-q", "-b", "doce/work")
	// A hook that would leave a mark if it ran.
	marker := filepath.Join(t.TempDir(), "hook-ran")
	for _, hook := range []string{"pre-merge-commit", "post-merge", "commit-msg"} {
		os.WriteFile(filepath.Join(work, ".git", "hooks", hook), []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	}
	merge := func() (MergeResult, error) {
		t.Helper()
		var bundle bytes.Buffer
		cmd := exec.Command("git", "bundle", "create", "-q", "-", "refs/heads/main")
		cmd.Dir, cmd.Stdout = forge, &bundle
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		cmd = exec.Command("sh", "-c", mergeScript)
		cmd.Dir, cmd.Stdin, cmd.Stdout = work, &bundle, &out
		cmd.Env = append(append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "DOCE_BASE=main", "DOCE_MERGE_MESSAGE=Merge main",
			"GIT_AUTHOR_NAME=ada", "GIT_AUTHOR_EMAIL=ada@doce.invalid", "GIT_COMMITTER_NAME=ada", "GIT_COMMITTER_EMAIL=ada@doce.invalid"), gitNoHooks...)
		if err := cmd.Run(); err != nil {
			t.Fatalf("merge script: %v\n%s", err, out.String())
		}
		return parseMerge(out.String())
	}

	commit(forge, "b.txt", "the forge's\n")
	commit(work, "c.txt", "the agent's\n")
	res, err := merge()
	if err != nil || len(res.Conflicts) != 0 || res.Ahead != 2 || res.Behind != 0 {
		t.Fatalf("merge: %+v %v; want 2 ahead (the work and the merge), 0 behind", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "b.txt")); string(b) != "the forge's\n" {
		t.Errorf("b.txt: %q", b)
	}
	if msg := git(work, "log", "-1", "--format=%an %s"); msg != "ada Merge main" {
		t.Errorf("merge commit: %s", msg)
	}

	commit(forge, "a.txt", "the forge's one\n")
	commit(forge, "d.txt", "more\n")
	commit(work, "a.txt", "the agent's one\n")
	head := git(work, "rev-parse", "HEAD")
	res, err = merge()
	if err != nil || strings.Join(res.Conflicts, ",") != "a.txt" {
		t.Fatalf("conflicting merge: %+v %v; want a.txt named", res, err)
	}
	if b, _ := os.ReadFile(filepath.Join(work, "a.txt")); string(b) != "the agent's one\n" || git(work, "rev-parse", "HEAD") != head || git(work, "status", "--porcelain") != "" {
		t.Errorf("the merge was not aborted: a.txt %q, status %q", b, git(work, "status", "--porcelain"))
	}
	if _, err := os.Stat(filepath.Join(work, "d.txt")); err == nil {
		t.Error("a file of the aborted merge is in the tree")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a hook of the repository ran")
	}
	if _, err := os.Stat(filepath.Join(work, ".git", "doce-pull.bundle")); err == nil {
		t.Error("the bundle was left in the repository")
	}
}

func TestParseMerge(t *testing.T) {
	if res, err := parseMerge("merged\n3\t1\n"); err != nil || res.Ahead != 3 || res.Behind != 1 {
		t.Errorf("merged: %+v %v", res, err)
	}
	if res, err := parseMerge("conflict\na.txt\ndir/b c.txt\n"); err != nil || len(res.Conflicts) != 2 || res.Conflicts[1] != "dir/b c.txt" {
		t.Errorf("conflict: %+v %v", res, err)
	}
	for _, out := range []string{"", "merged\n", "conflict\n", "merged\nx y\n", "whatever"} {
		if _, err := parseMerge(out); err == nil {
			t.Errorf("%q was read", out)
		}
	}
}
