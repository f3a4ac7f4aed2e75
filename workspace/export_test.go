package workspace

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io"
	"slices"
	"testing"
)

// dockerTar builds a tar stream the way Docker's copy of /workspace names its entries.
func dockerTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(n string) { tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755, Uname: "dev"}) }
	file := func(n, body string) {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), Uid: 1000})
		tw.Write([]byte(body))
	}
	dir("workspace/")
	dir("workspace/src/")
	file("workspace/src/a.txt", "hello")
	dir("workspace/node_modules/")
	file("workspace/node_modules/x/i.js", "dep")
	file("workspace/web/node_modules/y.js", "nested dep")
	dir("workspace/.git/")
	file("workspace/.git/HEAD", "ref: refs/heads/main")
	file("workspace/.gitignore", "node_modules")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarGzNames(t *testing.T, b []byte) map[string]string {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if h.Uid != 0 || h.Uname != "" {
			t.Errorf("%s keeps the container's owner %d/%q", h.Name, h.Uid, h.Uname)
		}
		out[h.Name] = string(body)
	}
}

func TestRepack(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ExportOptions
		want []string
	}{
		{"tar.gz without .git", ExportOptions{Root: "demo"}, []string{"demo/", "demo/.gitignore", "demo/src/", "demo/src/a.txt"}},
		{"tar.gz with .git", ExportOptions{Root: "demo", Git: true}, []string{"demo/", "demo/.git/", "demo/.git/HEAD", "demo/.gitignore", "demo/src/", "demo/src/a.txt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Repack(bytes.NewReader(dockerTar(t)), &out, tc.opts); err != nil {
				t.Fatal(err)
			}
			got := tarGzNames(t, out.Bytes())
			var names []string
			for n := range got {
				names = append(names, n)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Fatalf("entries %v, want %v", names, tc.want)
			}
			if got["demo/src/a.txt"] != "hello" {
				t.Errorf("a.txt holds %q", got["demo/src/a.txt"])
			}
		})
	}

	t.Run("zip", func(t *testing.T) {
		var out bytes.Buffer
		if err := Repack(bytes.NewReader(dockerTar(t)), &out, ExportOptions{Format: FormatZip, Root: "demo"}); err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range zr.File {
			names = append(names, f.Name)
			if f.Name == "demo/src/a.txt" {
				rc, _ := f.Open()
				b, _ := io.ReadAll(rc)
				if string(b) != "hello" {
					t.Errorf("a.txt holds %q", b)
				}
			}
		}
		slices.Sort(names)
		if want := []string{"demo/", "demo/.gitignore", "demo/src/", "demo/src/a.txt"}; !slices.Equal(names, want) {
			t.Fatalf("entries %v, want %v", names, want)
		}
	})

	t.Run("unknown format", func(t *testing.T) {
		if err := Repack(bytes.NewReader(dockerTar(t)), io.Discard, ExportOptions{Format: "rar"}); err == nil {
			t.Fatal("rar accepted")
		}
	})
}
