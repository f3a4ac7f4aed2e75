package web

import (
	"errors"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/workspace"
)

// workspacePath checks a path from the browser names something inside the workspace: relative,
// no "..", no NUL or other control characters. "" (and ".") is the workspace's root.
func workspacePath(p string) (string, *Error) {
	bad := errBadRequest("path", "Give a path inside the project, relative to its root (for example src/main.go), without \"..\".")
	if len(p) > 4096 || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", bad
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") {
		return "", bad
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", bad
		}
	}
	clean := path.Clean(p)
	if clean == "." {
		return "", nil
	}
	return clean, nil
}

// apiExport streams the project's files as an archive: .tar.gz, or .zip with ?format=zip;
// node_modules left out, and .git unless ?git=1. It reads the workspace volume through Docker,
// so a stopped workspace downloads too.
func (s *Server) apiExport(c *gin.Context) {
	p, ok := s.ownProject(c)
	if !ok {
		return
	}
	opts := workspace.ExportOptions{Format: c.DefaultQuery("format", workspace.FormatTarGz), Root: p.Slug}
	switch opts.Format {
	case workspace.FormatTarGz, workspace.FormatZip:
	default:
		s.fail(c, errBadRequest("format", "Pick format tar.gz or zip."))
		return
	}
	switch c.Query("git") {
	case "", "0", "false":
	case "1", "true":
		opts.Git = true
	default:
		s.fail(c, errBadRequest("git", "Use git=1 to include the .git folder, or leave it out."))
		return
	}
	if s.Workspace == nil {
		s.fail(c, errWorkspaceUnavailable)
		return
	}
	files, err := s.Workspace.Files(c.Request.Context(), p.ID)
	if errors.Is(err, workspace.ErrNoWorkspace) {
		s.fail(c, &Error{Status: http.StatusConflict, Code: "no_workspace",
			Message: "This project has no workspace to download yet: its setup has not created it, or it was deleted."})
		return
	} else if err != nil {
		s.Log.Warn("unable to read workspace files", "project_id", p.ID, "error", err)
		s.fail(c, errWorkspaceUnavailable)
		return
	}
	defer files.Close()
	mime := "application/gzip"
	if opts.Format == workspace.FormatZip {
		mime = "application/zip"
	}
	c.Header("Content-Type", mime)
	c.Header("Content-Disposition", `attachment; filename="`+p.Slug+"."+opts.Format+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := workspace.Repack(files, c.Writer, opts); err != nil {
		// The archive has begun, so no error status can follow. It stops without its end
		// (gzip trailer, zip directory): the client sees a broken download, never a valid
		// partial one.
		s.Log.Warn("export cut short", "project_id", p.ID, "error", err)
	}
}

var errWorkspaceUnavailable = &Error{Status: http.StatusServiceUnavailable, Code: "workspace_unavailable",
	Message: "The workspace is stopped or starting; it is being started. Try again in a few seconds."}
