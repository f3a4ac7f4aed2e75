package workspace

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
)

// ErrNoWorkspace means the project has no workspace container (never set up, or removed).
var ErrNoWorkspace = errors.New("workspace: no workspace container")

// Archive formats Export writes.
const (
	FormatTarGz = "tar.gz"
	FormatZip   = "zip"
)

// ExportOptions says what Export writes.
type ExportOptions struct {
	Format string // FormatTarGz (default) or FormatZip
	Root   string // the folder the files are under in the archive, e.g. the project's slug
	Git    bool   // include .git folders
}

// Files opens the project's /workspace as Docker's tar stream (entries under "workspace/").
// It reads the volume through the container, stopped or running, without asking OpenCode.
func (m *Manager) Files(ctx context.Context, projectID string) (io.ReadCloser, error) {
	rc, _, err := m.docker.CopyFromContainer(ctx, containerName(projectID), workspaceDir)
	if cerrdefs.IsNotFound(err) {
		return nil, ErrNoWorkspace
	} else if err != nil {
		return nil, fmt.Errorf("workspace: unable to read the workspace files: %w", err)
	}
	return rc, nil
}

// Export writes the project's files to w as an archive: without node_modules (dependencies
// anyone can install again, and often most of the bytes) and without .git unless asked.
func (m *Manager) Export(ctx context.Context, projectID string, w io.Writer, opts ExportOptions) error {
	rc, err := m.Files(ctx, projectID)
	if err != nil {
		return err
	}
	defer rc.Close()
	return Repack(rc, w, opts)
}

// skipped reports whether a workspace-relative path is left out of an export.
func skipped(rel string, git bool) bool {
	for _, part := range strings.Split(rel, "/") {
		if part == "node_modules" || (part == ".git" && !git) {
			return true
		}
	}
	return false
}

// Repack copies the tar stream src (Docker's, entries under "workspace/") to dst in the format
// opts asks for, with the files under opts.Root and the left-out folders dropped.
func Repack(src io.Reader, dst io.Writer, opts ExportOptions) error {
	root := strings.Trim(opts.Root, "/")
	if root == "" {
		root = "project"
	}
	var add func(h *tar.Header, r io.Reader) error
	var finish func() error
	switch opts.Format {
	case FormatZip:
		zw := zip.NewWriter(dst)
		add = func(h *tar.Header, r io.Reader) error {
			if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir {
				return nil // links and devices have no portable zip form
			}
			zh, err := zip.FileInfoHeader(h.FileInfo())
			if err != nil {
				return err
			}
			zh.Name = h.Name
			if h.Typeflag == tar.TypeReg {
				zh.Method = zip.Deflate
			}
			fw, err := zw.CreateHeader(zh)
			if err != nil || h.Typeflag == tar.TypeDir {
				return err
			}
			_, err = io.Copy(fw, r)
			return err
		}
		finish = zw.Close
	case FormatTarGz, "":
		gz := gzip.NewWriter(dst)
		tw := tar.NewWriter(gz)
		add = func(h *tar.Header, r io.Reader) error {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			_, err := io.Copy(tw, r)
			return err
		}
		finish = func() error { return errors.Join(tw.Close(), gz.Close()) }
	default:
		return fmt.Errorf("workspace: unknown archive format %q", opts.Format)
	}

	tr := tar.NewReader(src)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("workspace: unable to read the workspace files: %w", err)
		}
		// Docker names entries after the copied folder: "workspace", "workspace/src/a.go".
		rel := strings.TrimPrefix(strings.TrimPrefix(path.Clean(h.Name), path.Base(workspaceDir)), "/")
		if skipped(rel, opts.Git) || strings.HasPrefix(rel, "../") {
			continue
		}
		name := path.Join(root, rel)
		if h.Typeflag == tar.TypeDir {
			name += "/"
		}
		h.Name = name
		// The container's user and group names mean nothing on the downloader's machine.
		h.Uname, h.Gname, h.Uid, h.Gid = "", "", 0, 0
		if err := add(h, tr); err != nil {
			return fmt.Errorf("workspace: unable to write the archive: %w", err)
		}
	}
	if err := finish(); err != nil {
		return fmt.Errorf("workspace: unable to write the archive: %w", err)
	}
	return nil
}
