package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func registerHost(t *testing.T, st *store.Store, name string) *store.Host {
	t.Helper()
	h := &store.Host{Name: name, TaskQueue: "doce-host-" + name, Address: "127.0.0.1", HeartbeatSeconds: 10, WorkspaceMemoryBytes: 1 << 30}
	if err := st.RegisterHost(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	return h
}

func load(name string, used int, mod func(*store.HostLoad)) store.HostLoad {
	now := time.Now()
	l := store.HostLoad{Host: store.Host{Name: name, HeartbeatSeconds: 10, HeartbeatAt: now, WorkspaceMemoryBytes: 1 << 30}, Projects: used}
	if mod != nil {
		mod(&l)
	}
	return l
}

func TestPickHost(t *testing.T) {
	now := time.Now()
	drained := func(l *store.HostLoad) { l.Drained = true }
	limit := func(n int) func(*store.HostLoad) { return func(l *store.HostLoad) { l.MaxWorkspaces = n } }
	for _, tc := range []struct {
		name  string
		hosts []store.HostLoad
		want  string // "" : ErrNoHost
		why   []string
	}{
		{"least loaded", []store.HostLoad{load("a", 3, nil), load("b", 1, nil), load("c", 2, nil)}, "b", nil},
		{"equal hosts take turns by name", []store.HostLoad{load("b", 2, nil), load("a", 2, nil)}, "a", nil},
		{"pooled workspaces count", []store.HostLoad{load("a", 1, func(l *store.HostLoad) { l.Pooled = 2 }), load("b", 2, nil)}, "b", nil},
		{"drained skipped", []store.HostLoad{load("a", 0, drained), load("b", 5, nil)}, "b", nil},
		{"full skipped", []store.HostLoad{load("a", 4, limit(4)), load("b", 9, nil)}, "b", nil},
		{"share of capacity, not count", []store.HostLoad{load("a", 3, limit(4)), load("b", 5, limit(20))}, "b", nil},
		{"memory is capacity", []store.HostLoad{
			load("a", 2, func(l *store.HostLoad) { l.MemoryBytes = 2 << 30 }), // two workspaces of 1 GiB: full
			load("b", 7, nil)}, "b", nil},
		{"unreachable skipped", []store.HostLoad{
			load("a", 0, func(l *store.HostLoad) { l.HeartbeatAt = now.Add(-time.Minute) }),
			load("b", 0, func(l *store.HostLoad) { l.StoppedAt = &now }),
			load("c", 8, nil)}, "c", nil},
		{"none can take it", []store.HostLoad{load("a", 0, drained), load("b", 2, limit(2)),
			load("c", 0, func(l *store.HostLoad) { l.HeartbeatAt = now.Add(-time.Hour) })},
			"", []string{"a is drained", "b is full (2 of 2 workspaces)", "c is unreachable"}},
		{"none registered", nil, "", []string{"none is registered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := store.PickHost(tc.hosts, now)
			if tc.want == "" {
				if !errors.Is(err, store.ErrNoHost) {
					t.Fatalf("got %v, %v; want ErrNoHost", got, err)
				}
				for _, w := range tc.why {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil || got.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func newProjectOf(t *testing.T, st *store.Store, owner string, i int) *store.Project {
	t.Helper()
	p, _, err := st.CreateProject(context.Background(), &store.Project{OwnerUserID: owner, Name: "P", Slug: fmt.Sprintf("p%d", i), Prompt: "x", ProviderID: "openai", ModelID: "m"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Twenty placements at once over two hosts: each counts the others, so they split ten and ten.
func TestPlaceProjectSpreadsConcurrentPlacements(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		registerHost(t, st, "a")
		registerHost(t, st, "b")
		u := &store.User{Username: "u", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		var ids []string
		for i := range 20 {
			ids = append(ids, newProjectOf(t, st, u.ID, i).ID)
		}
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := st.PlaceProject(ctx, id); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		hosts, err := st.ProjectHosts(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		n := map[string]int{}
		for _, h := range hosts {
			n[h]++
		}
		if n["a"] != 10 || n["b"] != 10 {
			t.Fatalf("placed %v, want 10 on a and 10 on b", n)
		}
		// Placing again is where it is.
		h, err := st.PlaceProject(ctx, ids[0])
		if err != nil || h.Name != hosts[ids[0]] {
			t.Fatalf("placed again on %v (%v), want %s", h, err, hosts[ids[0]])
		}
		loads, _ := st.Hosts(ctx)
		if loads[0].Projects != 10 || loads[1].Projects != 10 {
			t.Fatalf("loads %+v", loads)
		}
	})
}

func TestPlaceProjectSkipsDrainedAndFullHosts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "u", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		if _, err := st.PlaceProject(ctx, newProjectOf(t, st, u.ID, 0).ID); !errors.Is(err, store.ErrNoHost) {
			t.Fatalf("placing without hosts: %v, want ErrNoHost", err)
		}
		registerHost(t, st, "a")
		small := &store.Host{Name: "b", TaskQueue: "q-b", HeartbeatSeconds: 10, MaxWorkspaces: 1}
		if err := st.RegisterHost(ctx, small); err != nil {
			t.Fatal(err)
		}
		if err := st.SetHostDrained(ctx, "a", true); err != nil {
			t.Fatal(err)
		}
		// A worker's restart does not undrain its host.
		registerHost(t, st, "a")
		if h, err := st.PlaceProject(ctx, newProjectOf(t, st, u.ID, 1).ID); err != nil || h.Name != "b" {
			t.Fatalf("placed on %v (%v), want b: a is drained", h, err)
		}
		_, err := st.PlaceProject(ctx, newProjectOf(t, st, u.ID, 2).ID)
		if !errors.Is(err, store.ErrNoHost) || !strings.Contains(err.Error(), "a is drained") || !strings.Contains(err.Error(), "b is full (1 of 1") {
			t.Fatalf("placing with a drained and b full: %v", err)
		}
		// A cancelled project's workspace is gone: it frees its place.
		p3 := newProjectOf(t, st, u.ID, 3)
		if err := st.SetHostDrained(ctx, "a", false); err != nil {
			t.Fatal(err)
		}
		if h, _ := st.PlaceProject(ctx, p3.ID); h.Name != "a" {
			t.Fatalf("placed on %s, want a once undrained", h.Name)
		}
		if ok, _ := st.TransitionProject(ctx, p3.ID, []status.Project{status.Pending}, status.Cancelled, ""); !ok {
			t.Fatal("not cancelled")
		}
		if err := st.SetHostDrained(ctx, "nope", true); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("draining an unknown host: %v, want ErrNotFound", err)
		}
		loads, _ := st.Hosts(ctx)
		if loads[0].Name != "a" || loads[0].Projects != 0 || loads[1].Projects != 1 {
			t.Fatalf("loads %+v", loads)
		}
	})
}

// A pooled workspace is claimed only on a host that takes new projects, and the project is on
// that host.
func TestPoolClaimsSkipDrainedAndUnreachableHosts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		registerHost(t, st, "a")
		registerHost(t, st, "b")
		u := &store.User{Username: "u", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		pooled := func(host string) string {
			id := store.NewID()
			if err := st.AddPoolWorkspace(ctx, id, "img", "base", host); err != nil {
				t.Fatal(err)
			}
			if err := st.MarkPoolFree(ctx, id, "c", "n", 40000); err != nil {
				t.Fatal(err)
			}
			return id
		}
		claim := &store.PoolClaim{Image: "img", Configs: []string{"base"}}
		onA := pooled("a")
		time.Sleep(10 * time.Millisecond) // b's is newer
		onB := pooled("b")
		pooled("") // made before hosts: never claimed
		st.SetHostDrained(ctx, "a", true)
		p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}, claim)
		if err != nil || p.ID != onB || p.Host != "b" {
			t.Fatalf("claimed %s on %q (%v), want %s on b: a is drained", p.ID, p.Host, err, onB)
		}
		if err := st.HostStopped(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		st.SetHostDrained(ctx, "a", false)
		p, _, _ = st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}, claim)
		if p.ID != onA || p.Host != "a" {
			t.Fatalf("claimed %s on %q, want %s on a", p.ID, p.Host, onA)
		}
		p, _, _ = st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}, claim)
		if p.Host != "" || p.HostPort != 0 {
			t.Fatalf("claimed a workspace made before hosts: %+v", p)
		}
		// b's worker comes back.
		if err := st.HostHeartbeat(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		loads, _ := st.Hosts(ctx)
		if loads[1].State(time.Now()) != store.HostReady || loads[1].Projects != 1 {
			t.Fatalf("b after its heartbeat: %+v", loads[1])
		}
	})
}

func TestAdoptHostlessOnlyWithOneHost(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "u", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		old := newProjectOf(t, st, u.ID, 0)
		st.RecordContainer(ctx, old.ID, "cid", "n", 40000, 0)
		unstarted := newProjectOf(t, st, u.ID, 1)
		registerHost(t, st, "first")
		registerHost(t, st, "second")
		if n, err := st.AdoptHostless(ctx, "first"); err != nil || n != 0 {
			t.Fatalf("adopted %d (%v) with two hosts, want none", n, err)
		}
		st.DB.NewDelete().Model((*store.Host)(nil)).Where("name = 'second'").Exec(ctx)
		if n, err := st.AdoptHostless(ctx, "first"); err != nil || n != 1 {
			t.Fatalf("adopted %d (%v), want 1", n, err)
		}
		hosts, _ := st.ProjectHosts(ctx, []string{old.ID, unstarted.ID})
		if hosts[old.ID] != "first" || hosts[unstarted.ID] != "" {
			t.Fatalf("hosts %v: the one with a workspace is first's, the other waits for placement", hosts)
		}
	})
}
