package workspace

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
)

// importedMark is written last when a tree is placed: its presence means the whole tree
// arrived. The workspace's entrypoint waits for it (Spec.Import).
const importedMark = ".git/doce-imported"

// ErrStartedWithoutImport: the workspace gave up waiting for its repository and made
// /workspace a repository of its own; placing one over it now would mix the two.
var ErrStartedWithoutImport = errors.New("workspace: the workspace started without its repository")

// HasRepository reports whether a repository was placed in the project's workspace whole; a
// workspace that made a repository of its own instead is ErrStartedWithoutImport.
func (m *Manager) HasRepository(ctx context.Context, projectID string) (bool, error) {
	name := containerName(projectID)
	_, err := m.docker.ContainerStatPath(ctx, name, workspaceDir+"/"+importedMark)
	switch {
	case err == nil:
		return true, nil
	case !cerrdefs.IsNotFound(err):
		return false, fmt.Errorf("workspace: unable to look for %s: %w", importedMark, err)
	}
	if _, err := m.docker.ContainerStatPath(ctx, name, workspaceDir+"/.git"); err == nil {
		return false, ErrStartedWithoutImport
	} else if !cerrdefs.IsNotFound(err) {
		return false, fmt.Errorf("workspace: unable to look for .git: %w", err)
	}
	return false, nil
}

// PlaceTree copies the tree at dir (a clone made on doce's side) into the project's workspace,
// owned by the agent. The workspace's own opencode.json and AGENTS.md stay: they are doce's
// configuration of the agent, and a repository's versions of them remain in its history.
// The mark goes last, so HasRepository is true only once everything is there.
func (m *Manager) PlaceTree(ctx context.Context, projectID, dir string) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTree(pw, dir)) }()
	defer pr.Close()
	if err := m.docker.CopyToContainer(ctx, containerName(projectID), workspaceDir, pr, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("workspace: unable to place the repository: %w", err)
	}
	return nil
}

// writeTree writes dir as a tar stream of directories, regular files and symbolic links (their
// modes kept, the agent as owner), then the mark.
func writeTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	add := func(path string, fi fs.FileInfo, rel string) error {
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			var err error
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		} else if !fi.Mode().IsRegular() && !fi.IsDir() {
			return nil // a clone has no devices or pipes; none is copied
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = filepath.ToSlash(rel), AgentUID, AgentUID, "", ""
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	}
	err := filepath.Walk(dir, func(path string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." || rel == configFile || rel == agentsFile {
			return err
		}
		return add(path, fi, rel)
	})
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: importedMark, Mode: 0o644, ModTime: time.Now(), Uid: AgentUID, Gid: AgentUID}); err != nil {
		return err
	}
	return tw.Close()
}
