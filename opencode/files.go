package opencode

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	// Truncated says Content is the file's beginning only: the answer was longer than asked for.
	Truncated bool `json:"-"`
}

// FileContent reads the file at path (relative to the workspace), reading at most limit bytes of
// OpenCode's answer: of a longer one, the beginning of its content (Truncated).
func (c *Client) FileContent(ctx context.Context, path string, limit int) (FileContent, error) {
	resp, err := c.send(ctx, http.MethodGet, "/file/content?path="+url.QueryEscape(path), nil)
	if err != nil {
		return FileContent{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return FileContent{}, fmt.Errorf("opencode: unable to read /file/content answer: %w", err)
	}
	var fc FileContent
	if len(b) <= limit {
		if err := json.Unmarshal(b, &fc); err != nil {
			return FileContent{}, fmt.Errorf("opencode: unable to decode /file/content answer: %w", err)
		}
		return fc, nil
	}
	fc = contentPrefix(b[:limit])
	fc.Truncated = true
	return fc, nil
}

// contentPrefix reads what it can of an answer cut short: its top-level "type" and "mimeType"
// (OpenCode sends them first; when they come later they stay unknown, and the file passes for
// not text), and as much of its "content" string as b holds. Keys are found with the JSON tokenizer, so
// text inside strings or nested values never passes for them.
func contentPrefix(b []byte) FileContent {
	var fc FileContent
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, atKey, key := 0, false, ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return fc
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
			atKey = depth == 1
			continue
		}
		if depth != 1 {
			continue
		}
		if atKey {
			key, atKey = fmt.Sprint(tok), false
			if key == "content" {
				rest := b[dec.InputOffset():]
				if i := bytes.IndexByte(rest, '"'); i >= 0 {
					fc.Content = stringPrefix(rest[i:])
				}
				return fc
			}
			continue
		}
		switch v, _ := tok.(string); key {
		case "type":
			fc.Type = v
		case "mimeType":
			fc.MimeType = v
		}
		atKey = true
	}
}

// stringPrefix decodes the JSON string s starts with, or as much of it as s holds.
func stringPrefix(s []byte) string {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			var out string
			_ = json.Unmarshal(s[:i+1], &out)
			return out
		}
	}
	// Cut short: drop what may be half an escape (\uXXXX is the longest) and close the string.
	for cut := len(s); cut > 1 && cut >= len(s)-6; cut-- {
		var out string
		if json.Unmarshal(append(s[:cut:cut], '"'), &out) == nil {
			return out
		}
	}
	return ""
}
