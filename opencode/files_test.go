package opencode

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestAnswersAreReadWithinBounds: an answer past maxAnswer is refused after reading that much,
// and the file viewer's read stops at its limit, keeping the content's beginning.
func TestAnswersAreReadWithinBounds(t *testing.T) {
	var sent int64
	big := strings.Repeat("é\"\\\n<x>", 300000) // escapes of every length, multi-byte runes
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/session":
			// An endless answer: doce must stop reading.
			w.Write([]byte(`[{"id":"`))
			chunk := []byte(strings.Repeat("a", 1<<20))
			for range 64 {
				n, err := w.Write(chunk)
				sent += int64(n)
				if err != nil {
					return
				}
			}
		case "/file/content":
			var body any
			switch r.URL.Query().Get("path") {
			case "small.txt":
				body = map[string]any{"type": "text", "content": "hello"}
			case "decoy.txt":
				// Keys named like the answer's, nested or inside strings, come first.
				body = json.RawMessage(`{"patch":{"type":"binary","content":"nested"},"diff":"\"content\":\"fake\"","type":"text","content":` + mustJSON(big) + `}`)
			default: // in OpenCode's order: type first
				body = json.RawMessage(`{"type":"text","mimeType":"text/plain","content":` + mustJSON(big) + `}`)
			}
			json.NewEncoder(w).Encode(body)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "pw", srv.Client())
	ctx := context.Background()

	if _, err := c.Sessions(ctx); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an endless answer: %v, want ErrTooLarge", err)
	}
	fc, err := c.FileContent(ctx, "small.txt", 1<<20)
	if err != nil || fc.Content != "hello" || fc.Truncated {
		t.Fatalf("a small file: %+v %v", fc, err)
	}
	for _, path := range []string{"big.txt", "decoy.txt"} {
		fc, err = c.FileContent(ctx, path, 1<<20)
		if err != nil || fc.Type != "text" || !fc.Truncated || len(fc.Content) < 256<<10 || len(fc.Content) > 1<<20 {
			t.Fatalf("%s: type %q, truncated %v, %d bytes, %v", path, fc.Type, fc.Truncated, len(fc.Content), err)
		}
		// The beginning, exactly, up to what may be a rune cut in half at the end.
		head := fc.Content[:len(fc.Content)-4]
		if !strings.HasPrefix(big, head) {
			t.Errorf("%s: the content is not the file's beginning: %.40q", path, fc.Content)
		}
	}
	if fc, _ := c.FileContent(ctx, "big.txt", 1<<20); fc.MimeType != "text/plain" {
		t.Errorf("mime type %q", fc.MimeType)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
