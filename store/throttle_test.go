package store

import (
	"context"
	"path/filepath"
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

// TestLoginThrottleStreak: failures count per key, lock at the fifth, and a streak older than
// Forget starts again from one.
func TestLoginThrottleStreak(t *testing.T) {
	ctx := context.Background()
	st, err := Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DB.ExecContext(ctx, `CREATE TABLE login_throttles (kind TEXT NOT NULL, subject TEXT NOT NULL, failures INTEGER NOT NULL,
		locked_until TIMESTAMP, last_failure_at TIMESTAMP NOT NULL, PRIMARY KEY (kind, subject))`); err != nil {
		t.Fatal(err)
	}
	policy := map[string]Backoff{ThrottleAccount: {Free: 5, Base: time.Minute, Max: time.Hour, Forget: time.Hour}}
	k := ThrottleKey{Kind: ThrottleAccount, Subject: "alice"}
	now := time.Now()
	for i := 1; i <= 5; i++ {
		locked, err := st.RecordLoginFailure(ctx, now, policy, k)
		if err != nil {
			t.Fatal(err)
		}
		if (len(locked) == 1) != (i == 5) {
			t.Fatalf("failure %d: locked %v", i, locked)
		}
	}
	if wait, _ := st.LoginLockedFor(ctx, now, k); wait < time.Minute-time.Second || wait > time.Minute {
		t.Errorf("locked for %s, want 1m", wait)
	}
	if wait, _ := st.LoginLockedFor(ctx, now.Add(2*time.Minute), k); wait != 0 {
		t.Errorf("still locked after the lock: %s", wait)
	}
	later := now.Add(2 * time.Hour)
	if locked, _ := st.RecordLoginFailure(ctx, later, policy, k); len(locked) != 0 {
		t.Errorf("a failure after Forget locked: %v", locked)
	}
	rows, _ := st.LoginThrottles(ctx, later, later.Add(-time.Hour), 10)
	if len(rows) != 1 || rows[0].Failures != 1 {
		t.Errorf("streak after Forget: %+v, want 1 failure", rows)
	}
}
