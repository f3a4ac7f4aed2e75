package oauthtest

import "testing"

// Start is New for tests: it fails the test if the server cannot start and
// closes the server when the test (and its subtests) finish.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("oauthtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("oauthtest: close: %v", err)
		}
	})
	return s
}
