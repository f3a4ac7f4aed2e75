package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestLoginDevices: a device token names its user's device only, is stored as a hash, and a
// user keeps their newest 20 devices.
func TestLoginDevices(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		alice := &store.User{Username: "alice", PasswordHash: "h", Role: store.RoleUser}
		bob := &store.User{Username: "bob", PasswordHash: "h", Role: store.RoleUser}
		for _, u := range []*store.User{alice, bob} {
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		first, err := st.CreateLoginDevice(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := st.LoginDeviceOf(ctx, first, alice.ID); err != nil || id == "" {
			t.Fatalf("alice's device: %q %v", id, err)
		}
		for _, tc := range []struct{ token, user string }{{first, bob.ID}, {"made-up", alice.ID}, {"", alice.ID}} {
			if _, err := st.LoginDeviceOf(ctx, tc.token, tc.user); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("device %.8q of %s: %v, want ErrNotFound", tc.token, tc.user, err)
			}
		}
		if strings.Contains(string(storetest.Contents(t, st)), first) {
			t.Error("a device token is in the database as it is")
		}
		for range 20 {
			if _, err := st.CreateLoginDevice(ctx, alice.ID); err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := st.DB.NewSelect().Table("login_devices").Where("user_id = ?", alice.ID).Count(ctx); n != 20 {
			t.Errorf("alice has %d devices, want the newest 20", n)
		}
		if _, err := st.LoginDeviceOf(ctx, first, alice.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the oldest device is still known: %v", err)
		}
	})
}
