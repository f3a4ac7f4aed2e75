package workspace

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWriteTree: a clone becomes a tar the agent owns, without the workspace's own
// configuration files, with links kept as links and the mark last.
func TestWriteTree(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"README.md": "# app\n", "src/main.go": "package main\n", ".git/HEAD": "ref: refs/heads/main\n",
		".git/config": "[core]\n", "opencode.json": `{"provider":{}}`, "AGENTS.md": "the repository's\n",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../README.md", filepath.Join(dir, "src", "link")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeTree(&buf, dir); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != AgentUID || h.Gid != AgentUID {
			t.Errorf("%s owned by %d:%d", h.Name, h.Uid, h.Gid)
		}
		if h.Name == "src/link" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "../README.md") {
			t.Errorf("src/link: %+v", h)
		}
	}
	if len(names) == 0 || names[len(names)-1] != importedMark {
		t.Errorf("entries %v: %s is not last", names, importedMark)
	}
	for _, want := range []string{"README.md", "src/", "src/main.go", "src/link", ".git/config", ".git/HEAD"} {
		if !slices.Contains(names, want) {
			t.Errorf("entries %v lack %s", names, want)
		}
	}
	if slices.Contains(names, "opencode.json") || slices.Contains(names, "AGENTS.md") {
		t.Errorf("entries %v hold the workspace's own configuration", names)
	}
}
