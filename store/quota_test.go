package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/doce-dev/doce/status"
	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestProjectUsage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		a := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		b := &store.User{Username: "b", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, a)
		st.CreateUser(ctx, b)
		if u, err := st.ProjectUsage(ctx, a.ID, time.Now().Add(-time.Hour)); err != nil || u != (store.Usage{}) {
			t.Fatalf("no projects: %+v %v", u, err)
		}
		var ids []string
		for range 4 {
			p := &store.Project{OwnerUserID: a.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
			if _, _, err := st.CreateProject(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, p.ID)
		}
		st.CreateProject(ctx, &store.Project{OwnerUserID: b.ID, Name: "B", Slug: "b", Prompt: "x", ProviderID: "openai", ModelID: "m"}, nil)
		for id, to := range map[string]status.Project{ids[1]: status.Stopped, ids[2]: status.Deleting, ids[3]: status.SetupFailed} {
			if ok, err := st.TransitionProject(ctx, id, []status.Project{status.Pending}, to, ""); err != nil || !ok {
				t.Fatalf("to %s: %v %v", to, ok, err)
			}
		}
		u, err := st.ProjectUsage(ctx, a.ID, time.Now().Add(-time.Hour))
		if err != nil || u != (store.Usage{Projects: 3, Running: 1, CreatedSince: 4}) {
			t.Errorf("usage %+v %v, want 3 projects (not the one being deleted), 1 running, 4 made", u, err)
		}
		if u, _ := st.ProjectUsage(ctx, a.ID, time.Now().Add(time.Minute)); u.CreatedSince != 0 {
			t.Errorf("made since a minute ahead: %d", u.CreatedSince)
		}
		if at, err := st.OldestCreatedSince(ctx, a.ID, time.Now().Add(-time.Hour)); err != nil || time.Since(at) > time.Minute {
			t.Errorf("oldest made in the hour: %v %v", at, err)
		}
	})
}
