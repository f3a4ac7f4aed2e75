package store

import (
	"testing"
	"time"
)

func TestBackoffDoubles(t *testing.T) {
	b := Backoff{Free: 5, Base: time.Second, Max: 15 * time.Minute}
	for n, want := range map[int]time.Duration{1: 0, 4: 0, 5: time.Second, 6: 2 * time.Second, 7: 4 * time.Second, 14: 512 * time.Second, 15: 15 * time.Minute, 1000: 15 * time.Minute} {
		if got := b.lockFor(n); got != want {
			t.Errorf("failure %d locks for %s, want %s", n, got, want)
		}
	}
}
