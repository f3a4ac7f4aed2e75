package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestLoginThrottleStreak: failures count per key, lock at the fifth, and a streak older than
// Forget starts again from one.
func TestLoginThrottleStreak(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		policy := map[string]store.Backoff{store.ThrottleAccount: {Free: 5, Base: time.Minute, Max: time.Hour, Forget: time.Hour}}
		k := store.ThrottleKey{Kind: store.ThrottleAccount, Subject: "alice"}
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
	})
}

// TestLoginThrottleCountsConcurrentFailures: failed sign-ins against one account at once, as
// a password-guessing script on several web processes makes them, each count.
func TestLoginThrottleCountsConcurrentFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		policy := map[string]store.Backoff{store.ThrottleAccount: {Free: 100, Base: time.Minute, Max: time.Hour, Forget: time.Hour}}
		k := store.ThrottleKey{Kind: store.ThrottleAccount, Subject: "alice"}
		const n = 20
		storetest.Warm(t, st, n)
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := st.RecordLoginFailure(ctx, time.Now(), policy, k)
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		rows, err := st.LoginThrottles(ctx, time.Now(), time.Now().Add(-time.Hour), 10)
		if err != nil || len(rows) != 1 || rows[0].Failures != n {
			t.Fatalf("after %d failures at once: %+v %v", n, rows, err)
		}
	})
}
