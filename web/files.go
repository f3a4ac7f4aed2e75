package web

import (
	"context"
	"errors"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/doce-dev/doce/httperr"
	"github.com/doce-dev/doce/opencode"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/workspace"
)

// maxViewBytes is the most of a file the viewer is sent: past it the viewer says the file is
// cut short (Download has it whole). maxViewRead is the most of OpenCode's answer doce reads
// for it: the file's JSON-escaped text, with room for escapes. filesTimeout bounds how long a
// workspace may take to list a folder or read a file: one that does not answer in time is
// answered as unavailable instead of holding the request.
const (
	maxViewBytes = 1 << 20
	maxViewRead  = 2 * maxViewBytes
	filesTimeout = 20 * time.Second
)

// FileEntry is a file or folder of the workspace, as the files tree shows it.
type FileEntry struct {
	Name    string `json:"name"`
	Path    string `json:"path"`    // relative to the workspace root, without a trailing "/"
	Type    string `json:"type"`    // file | directory
	Ignored bool   `json:"ignored"` // matched by the project's .gitignore
}

// FileView is a file's content for the read-only viewer. Binary files come without content.
type FileView struct {
	Path      string `json:"path"`
	Type      string `json:"type"` // text | binary
	Content   string `json:"content,omitempty"`
	MimeType  string `json:"mimeType,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
}

// workspacePath checks a path from the browser names something inside the workspace: relative,
// no "..", no NUL or other control characters. "" (and ".") is the workspace's root.
func workspacePath(p string) (string, *httperr.Error) {
	bad := httperr.Invalid("path", "Give a path inside the project, relative to its root (for example src/main.go), without \"..\".")
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
	p := project(c)
	opts := workspace.ExportOptions{Format: c.DefaultQuery("format", workspace.FormatTarGz), Root: p.Slug}
	switch opts.Format {
	case workspace.FormatTarGz, workspace.FormatZip:
	default:
		s.fail(c, httperr.Invalid("format", "Pick format tar.gz or zip."))
		return
	}
	switch c.Query("git") {
	case "", "0", "false":
	case "1", "true":
		opts.Git = true
	default:
		s.fail(c, httperr.Invalid("git", "Use git=1 to include the .git folder, or leave it out."))
		return
	}
	ws := s.Workspace
	if s.Hosts != nil {
		// The engine of the project's host: its volumes are there.
		var err error
		if ws, err = s.Hosts.Workspace(c.Request.Context(), p.Host); err != nil {
			s.Log.Warn("unable to reach the project's Docker host", "project_id", p.ID, "host", p.Host, "error", err)
			s.fail(c, errWorkspaceDown)
			return
		}
	}
	if ws == nil {
		s.fail(c, errWorkspaceDown)
		return
	}
	files, err := ws.Files(c.Request.Context(), p.ID)
	if errors.Is(err, workspace.ErrNoWorkspace) {
		s.fail(c, httperr.New(http.StatusConflict, "no_workspace",
			"This project has no workspace to download yet: its setup has not created it, or it was deleted."))
		return
	} else if err != nil {
		s.Log.Warn("unable to read workspace files", "project_id", p.ID, "error", err)
		s.fail(c, errWorkspaceDown)
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

// filesClient is the OpenCode client of a ready project's workspace, or false after answering
// why there is none. The files need no event stream, so they skip the project's hub.
func (s *Server) filesClient(c *gin.Context, p *store.Project) (*opencode.Client, bool) {
	oc, err := s.Agent.Client(c.Request.Context(), p)
	if err != nil {
		s.fail(c, s.agentError(c, p, err, errWorkspaceDown))
		return nil, false
	}
	return oc, true
}

// filesError is what an OpenCode file call that failed says to the person. OpenCode answers a
// path it cannot list or read with a 500 of its own, which here means "no such file"; the rest
// is as for the conversation (a workspace that does not answer is 503 and is started).
func (s *Server) filesError(c *gin.Context, p *store.Project, what string, err error) error {
	if errors.Is(err, opencode.ErrTooLarge) {
		return httperr.New(http.StatusUnprocessableEntity, "too_large", "This "+what+" is too large to show here: download the project instead.")
	}
	var se *opencode.StatusError
	if errors.As(err, &se) && se.Code >= 500 || opencode.IsNotFound(err) {
		return httperr.NotFound(what + " in this project").WithCause(err)
	}
	return s.agentError(c, p, err, httperr.NotFound(what+" in this project"))
}

// apiFiles lists a folder of the workspace: ?path= relative to its root, "" for the root.
func (s *Server) apiFiles(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	dir, bad := workspacePath(c.Query("path"))
	if bad != nil {
		s.fail(c, bad)
		return
	}
	oc, ok := s.filesClient(c, p)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), filesTimeout)
	defer cancel()
	nodes, err := oc.Files(ctx, dir)
	if err != nil {
		s.fail(c, s.filesError(c, p, "folder", err))
		return
	}
	entries := make([]FileEntry, 0, len(nodes))
	for _, n := range nodes {
		// Only what doce chose passes: OpenCode's absolute paths say nothing the owner needs.
		entries = append(entries, FileEntry{Name: n.Name, Path: strings.TrimSuffix(n.Path, "/"), Type: n.Type, Ignored: n.Ignored})
	}
	c.JSON(http.StatusOK, gin.H{"path": dir, "entries": entries})
}

// apiFileContent reads a file of the workspace for the viewer: ?path= relative to its root.
func (s *Server) apiFileContent(c *gin.Context) {
	p, ok := s.readyProject(c)
	if !ok {
		return
	}
	file, bad := workspacePath(c.Query("path"))
	if bad != nil {
		s.fail(c, bad)
		return
	}
	if file == "" {
		s.fail(c, httperr.Invalid("path", "Give the path of a file in the project."))
		return
	}
	oc, ok := s.filesClient(c, p)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), filesTimeout)
	defer cancel()
	fc, err := oc.FileContent(ctx, file, maxViewRead)
	if err != nil {
		s.fail(c, s.filesError(c, p, "file", err))
		return
	}
	v := FileView{Path: file, Type: fc.Type, MimeType: fc.MimeType, Truncated: fc.Truncated}
	if fc.Type == "text" {
		v.Content = fc.Content
		if len(v.Content) > maxViewBytes {
			cut := maxViewBytes
			for cut > 0 && !utf8.RuneStart(v.Content[cut]) {
				cut--
			}
			v.Content, v.Truncated = v.Content[:cut], true
		}
	} else {
		v.Type = "binary" // shown as "not text": its bytes are for Download, not the viewer
	}
	c.JSON(http.StatusOK, gin.H{"file": v})
}
