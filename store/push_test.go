package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/doce-dev/doce/store"
	"github.com/doce-dev/doce/store/storetest"
)

// TestRecordPush: a push runs, ends with its commit and pull request; a push to the same
// branch keeps the pull request, one to another branch forgets it; an outcome for a branch no
// longer pushed to is dropped.
func TestRecordPush(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "app", Slug: "app", ProviderID: "openai", ModelID: "m",
			RepositoryURL: "https://git.example.com/ada/app.git"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		get := func() *store.Project {
			t.Helper()
			got, err := st.Project(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		at := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
		if err := st.RecordPushStarted(ctx, p.ID, "work", at); err != nil {
			t.Fatal(err)
		}
		if got := get(); got.PushBranch != "work" || got.PushStatus != store.PushRunning || got.PushAt == nil || !got.PushAt.Equal(at) {
			t.Fatalf("started: %+v", got)
		}
		if err := st.RecordPushStarted(ctx, p.ID, "other", at.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second push while one runs: %v, want ErrConflict", err)
		}
		if err := st.RecordPushStarted(ctx, "no-such-project", "work", at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no project: %v", err)
		}
		if err := st.RecordPush(ctx, p.ID, "work", store.PushOutcome{Status: store.PushDone, Commit: "abc", PullRequestURL: "https://git.example.com/ada/app/pulls/3", PullRequestNumber: 3}); err != nil {
			t.Fatal(err)
		}
		if got := get(); got.PushStatus != store.PushDone || got.PushCommit != "abc" || got.PullRequestNumber != 3 || got.PullRequestURL == "" {
			t.Fatalf("done: %+v", got)
		}
		// Again to the same branch: the pull request stays, the failure is recorded.
		st.RecordPushStarted(ctx, p.ID, "work", at.Add(time.Minute))
		st.RecordPush(ctx, p.ID, "work", store.PushOutcome{Status: store.PushFailed, Error: "refused"})
		if got := get(); got.PushStatus != store.PushFailed || got.PushError != "refused" || got.PullRequestNumber != 3 || got.PushCommit != "abc" {
			t.Fatalf("failed: %+v", got)
		}
		// Another branch: its own pull request, and the old branch's late outcome is dropped.
		st.RecordPushStarted(ctx, p.ID, "other", at.Add(2*time.Minute))
		if got := get(); got.PullRequestNumber != 0 || got.PullRequestURL != "" || got.PushError != "" {
			t.Fatalf("another branch: %+v", got)
		}
		if err := st.RecordPush(ctx, p.ID, "work", store.PushOutcome{Status: store.PushDone, PullRequestNumber: 3, PullRequestURL: "x"}); err != nil {
			t.Fatal(err)
		}
		if got := get(); got.PushStatus != store.PushRunning || got.PullRequestNumber != 0 {
			t.Fatalf("late outcome of another branch: %+v", got)
		}
		// A push recorded as running for longer than any can run was lost: another may start.
		if err := st.RecordPushStarted(ctx, p.ID, "other", at.Add(2*time.Minute+store.PushStale+time.Second)); err != nil {
			t.Fatalf("after a lost push: %v", err)
		}
	})
}

// TestRecordPull: a pull runs and ends with the base it found, its commit and the counts; a
// second pull while one runs is refused; a failure forgets the counts of the pull before.
func TestRecordPull(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		u := &store.User{Username: "ada", PasswordHash: "h", Role: store.RoleUser}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		p, _, err := st.CreateProject(ctx, &store.Project{OwnerUserID: u.ID, Name: "app", Slug: "app", ProviderID: "openai", ModelID: "m",
			RepositoryURL: "https://git.example.com/ada/app.git"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		get := func() *store.Project {
			t.Helper()
			got, err := st.Project(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		at := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
		if err := st.RecordPullStarted(ctx, p.ID, "", at); err != nil {
			t.Fatal(err)
		}
		if got := get(); got.PullStatus != store.PushRunning || got.PullAt == nil || !got.PullAt.Equal(at) || got.PullAhead != nil {
			t.Fatalf("started: %+v", got)
		}
		if err := st.RecordPullStarted(ctx, p.ID, "main", at.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second pull while one runs: %v, want ErrConflict", err)
		}
		if err := st.RecordPullStarted(ctx, "no-such-project", "main", at); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("no project: %v", err)
		}
		ahead, behind := 2, 0
		if err := st.RecordPull(ctx, p.ID, store.PullOutcome{Status: store.PushDone, Base: "main", Commit: "abc", Ahead: &ahead, Behind: &behind}); err != nil {
			t.Fatal(err)
		}
		if got := get(); got.PullStatus != store.PushDone || got.PullBase != "main" || got.PullCommit != "abc" || got.PullAhead == nil || *got.PullAhead != 2 || got.PullBehind == nil || *got.PullBehind != 0 {
			t.Fatalf("done: %+v", got)
		}
		if err := st.RecordPullStarted(ctx, p.ID, "main", at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		st.RecordPull(ctx, p.ID, store.PullOutcome{Status: store.PushFailed, Error: "conflict in a.txt"})
		if got := get(); got.PullStatus != store.PushFailed || got.PullError != "conflict in a.txt" || got.PullAhead != nil || got.PullBase != "main" {
			t.Fatalf("failed: %+v", got)
		}
	})
}
