package opencode

import (
	"context"
	"net/http"
	"net/url"
)

// FileNode is an entry of a workspace folder, as GET /file lists it.
type FileNode struct {
	Name     string `json:"name"`
	Path     string `json:"path"` // relative to the workspace; folders end in "/"
	Absolute string `json:"absolute"`
	Type     string `json:"type"` // file | directory
	Ignored  bool   `json:"ignored"`
}

// Files lists the folder at path (relative to the workspace; "" is its root).
func (c *Client) Files(ctx context.Context, path string) ([]FileNode, error) {
	var ns []FileNode
	err := c.do(ctx, http.MethodGet, "/file?path="+url.QueryEscape(path), nil, &ns)
	return ns, err
}

// FileContent is a file as GET /file/content reads it.
type FileContent struct {
	Type     string `json:"type"` // text | binary
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"` // base64, for binary files
	MimeType string `json:"mimeType,omitempty"`
}

// FileContent reads the file at path (relative to the workspace).
func (c *Client) FileContent(ctx context.Context, path string) (FileContent, error) {
	var fc FileContent
	err := c.do(ctx, http.MethodGet, "/file/content?path="+url.QueryEscape(path), nil, &fc)
	return fc, err
}
