package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/doce-dev/doce/web"
)

// TestScriptModulesLoad: every script of doce's own is served as JavaScript (a browser runs a
// module only when it is, and nosniff forbids guessing), and every module it imports is a file
// doce serves, so the pages' modules load without a bundler.
func TestScriptModulesLoad(t *testing.T) {
	srv, _ := newServer(t, &web.Server{})
	imports := regexp.MustCompile(`(?m)^\s*import\s[^"']*["']([^"']+)["']`)
	static := os.DirFS("static")
	n := 0
	err := fs.WalkDir(static, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && name == "vendor" {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(name, ".js") {
			return nil
		}
		n++
		resp, err := http.Get(srv.URL + "/static/" + name)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("/static/%s: %d %q, want 200 text/javascript", name, resp.StatusCode, ct)
		}
		for _, m := range imports.FindAllSubmatch(body, -1) {
			spec := string(m[1])
			target := path.Join(path.Dir(name), spec)
			if !strings.HasPrefix(spec, "./") && !strings.HasPrefix(spec, "../") || strings.HasPrefix(target, "..") {
				t.Errorf("%s imports %q: not a file under /static", name, spec)
				continue
			}
			if _, err := fs.Stat(static, target); err != nil {
				t.Errorf("%s imports %q, which is not there", name, spec)
			}
		}
		return nil
	})
	if err != nil || n < 5 {
		t.Fatalf("read %d scripts: %v", n, err)
	}
}
