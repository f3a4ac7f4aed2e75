package web

import "testing"

func TestWorkspacePath(t *testing.T) {
	for in, want := range map[string]string{"": "", ".": "", "src": "src", "src/": "src", "src//a.go": "src/a.go", "./a": "a", ".git/HEAD": ".git/HEAD", "a..b": "a..b"} {
		if got, err := workspacePath(in); err != nil || got != want {
			t.Errorf("workspacePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../a", "a/../../b", "a/..", "/etc/passwd", "a\x00", "a\\..\\b", "a\tb", "\xff"} {
		if _, err := workspacePath(in); err == nil {
			t.Errorf("workspacePath(%q) accepted", in)
		}
	}
}
