package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

func TestPoolWorkspaceLife(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		registerHost(t, st, "h1")
		id := store.NewID()
		if err := st.AddPoolWorkspace(ctx, id, "img:1", "base", "h1"); err != nil {
			t.Fatal(err)
		}
		if err := st.AddPoolWorkspace(ctx, id, "img:1", "base", "h1"); err != nil { // a retried start
			t.Fatalf("adding the same id again: %v", err)
		}
		ct, err := st.SetPoolPasswordOnce(ctx, id, "vault:v1:first")
		if err != nil || ct != "vault:v1:first" {
			t.Fatalf("password: %q %v", ct, err)
		}
		if ct, _ := st.SetPoolPasswordOnce(ctx, id, "vault:v1:second"); ct != "vault:v1:first" {
			t.Fatalf("second password replaced the first: %q", ct)
		}

		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		newProject := func() *store.Project {
			return &store.Project{OwnerUserID: u.ID, Name: "P", Slug: "p", Prompt: "x", ProviderID: "openai", ModelID: "m"}
		}
		// Starting workspaces are not claimed.
		p, _, err := st.CreateProject(ctx, newProject(), &store.PoolClaim{Image: "img:1", Configs: []string{"mine", "base"}})
		if err != nil || p.ID == id || p.HostPort != 0 {
			t.Fatalf("claimed a starting workspace: %+v %v", p, err)
		}
		if err := st.MarkPoolFree(ctx, id, "cid", "doce-"+id+"-opencode", 40001); err != nil {
			t.Fatal(err)
		}
		// Another image's projects do not take it.
		if p, _, _ := st.CreateProject(ctx, newProject(), &store.PoolClaim{Image: "img:2", Configs: []string{"mine", "base"}}); p.ID == id {
			t.Fatal("a project on another image claimed it")
		}
		p, _, err = st.CreateProject(ctx, newProject(), &store.PoolClaim{Image: "img:1", Configs: []string{"mine", "base"}})
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != id || p.HostPort != 40001 || p.ContainerID != "cid" || p.ServerPasswordCiphertext != "vault:v1:first" || p.Host != "h1" {
			t.Fatalf("claimed project = %+v, want the workspace's id, port, container, password and host", p)
		}
		if _, err := st.PoolWorkspace(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the claimed workspace is still pooled: %v", err)
		}
		if err := st.MarkPoolFree(ctx, id, "cid", "n", 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a claimed workspace was offered again: %v", err)
		}
	})
}

// A project claims a workspace started on its own configuration before an older one on the
// base configuration, and never one started on another project's.
func TestPoolClaimPrefersTheProjectsConfiguration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		registerHost(t, st, "h1")
		add := func(sum string, port int) string {
			id := store.NewID()
			if err := st.AddPoolWorkspace(ctx, id, "img", sum, "h1"); err != nil {
				t.Fatal(err)
			}
			if err := st.MarkPoolFree(ctx, id, "c", "n", port); err != nil {
				t.Fatal(err)
			}
			return id
		}
		base := add("base", 40001)
		theirs := add("theirs", 40002)
		mine := add("mine", 40003)
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		claim := &store.PoolClaim{Image: "img", Configs: []string{"mine", "base"}}
		for i, want := range []string{mine, base, ""} {
			p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: fmt.Sprintf("p%d", i), Prompt: "x", ProviderID: "openai", ModelID: "m"}, claim)
			if err != nil {
				t.Fatal(err)
			}
			if want == "" {
				if p.ID == theirs || p.HostPort != 0 {
					t.Fatalf("project %d claimed a workspace on another configuration: %+v", i, p)
				}
				continue
			}
			if p.ID != want {
				t.Fatalf("project %d claimed %s (port %d), want %s", i, p.ID, p.HostPort, want)
			}
		}
		if w, err := st.PoolWorkspace(ctx, theirs); err != nil || w.ConfigSum != "theirs" {
			t.Fatalf("the other configuration's workspace: %+v %v", w, err)
		}
	})
}

// Twenty projects at once against three free workspaces: three claim one each, no workspace is
// given twice, the others start without one.
func TestPoolClaimsAreExclusive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		registerHost(t, st, "h1")
		free := map[string]bool{}
		for i := range 3 {
			id := store.NewID()
			st.AddPoolWorkspace(ctx, id, "img", "base", "h1")
			if err := st.MarkPoolFree(ctx, id, "c", "n", 40000+i); err != nil {
				t.Fatal(err)
			}
			free[id] = true
		}
		u := &store.User{Username: "a", PasswordHash: "h", Role: store.RoleUser}
		st.CreateUser(ctx, u)
		var wg sync.WaitGroup
		ids := make(chan string, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "P", Slug: fmt.Sprintf("p%d", i), Prompt: "x", ProviderID: "openai", ModelID: "m"}, &store.PoolClaim{Image: "img", Configs: []string{"base"}})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- p.ID
			}()
		}
		wg.Wait()
		close(ids)
		claimed, seen := 0, map[string]bool{}
		for id := range ids {
			if seen[id] {
				t.Fatalf("two projects got id %s", id)
			}
			seen[id] = true
			if free[id] {
				claimed++
			}
		}
		if len(seen) != 20 || claimed != 3 {
			t.Fatalf("%d projects, %d claimed a workspace; want 20 and 3", len(seen), claimed)
		}
		left, _ := st.PoolWorkspaces(ctx)
		if len(left) != 0 {
			t.Fatalf("%d workspaces left in the pool, want 0", len(left))
		}
	})
}
