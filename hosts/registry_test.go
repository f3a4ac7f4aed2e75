package hosts

import (
	"context"
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestRegistryReadsTheTableOncePerMaxAgeUntilRefreshed: a drain made in the database shows only
// after Refresh (or maxAge), so page views do not each ask the database.
func TestRegistryReadsTheTableOncePerMaxAgeUntilRefreshed(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, storetest.SQLite)
	if err := st.RegisterHost(ctx, &store.Host{Name: "a", TaskQueue: "q-a", Address: "10.0.0.1", HeartbeatSeconds: 5}); err != nil {
		t.Fatal(err)
	}
	r := NewRegistry(st, nil)
	defer r.Close()
	if got := r.State(ctx, "a"); got != store.HostReady {
		t.Fatalf("state of a fresh host = %q", got)
	}
	if err := st.SetHostDrained(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if got := r.State(ctx, "a"); got != store.HostReady {
		t.Errorf("the drain showed before maxAge without a refresh: %q", got)
	}
	r.Refresh()
	if got := r.State(ctx, "a"); got != store.HostDrained {
		t.Errorf("after Refresh the state = %q, want drained", got)
	}
	if got := r.Address(ctx, "a"); got != "10.0.0.1" {
		t.Errorf("address = %q", got)
	}
	if got := r.State(ctx, "gone"); got != store.HostUnreachable {
		t.Errorf("a host without a row = %q, want unreachable", got)
	}
	if _, err := r.Workspace(ctx, ""); err == nil {
		t.Error("a registry without an own engine gave one")
	}
}
