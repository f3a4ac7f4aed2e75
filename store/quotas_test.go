package store_test

import (
	"context"
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestUserQuota(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "ann", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		if q, err := st.UserQuota(ctx, u.ID); err != nil || !q.IsDefault() {
			t.Fatalf("before any is set: %+v %v", q, err)
		}
		two, zero := 2, 0
		if err := st.SetUserQuota(ctx, store.UserQuota{UserID: u.ID, Running: &two, CreatePerHour: &zero}); err != nil {
			t.Fatal(err)
		}
		q, err := st.UserQuota(ctx, u.ID)
		if err != nil || q.Projects != nil || q.Running == nil || *q.Running != 2 || q.CreatePerHour == nil || *q.CreatePerHour != 0 {
			t.Fatalf("set: %+v %v", q, err)
		}
		// Setting them again replaces them; setting none removes the row.
		if err := st.SetUserQuota(ctx, store.UserQuota{UserID: u.ID, Projects: &two}); err != nil {
			t.Fatal(err)
		}
		if all, err := st.UserQuotas(ctx); err != nil || len(all) != 1 || all[u.ID].Running != nil || *all[u.ID].Projects != 2 {
			t.Fatalf("replaced: %+v %v", all, err)
		}
		if err := st.SetUserQuota(ctx, store.UserQuota{UserID: u.ID}); err != nil {
			t.Fatal(err)
		}
		if all, err := st.UserQuotas(ctx); err != nil || len(all) != 0 {
			t.Fatalf("after reset: %+v %v", all, err)
		}
	})
}
