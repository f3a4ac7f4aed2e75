package migrations_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/doce-dev/doce/migrations"
	"github.com/doce-dev/doce/store"
)

// TestUpDownUp applies every migration, rolls the group back, and applies it again: the down
// files undo what the up files do, so an upgrade can be rolled back.
func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(filepath.Join(t.TempDir(), "doce.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	up, err := migrations.Up(ctx, st.DB)
	if err != nil || len(up) != len(migrations.Migrations.Sorted()) {
		t.Fatalf("up: %v %v", up, err)
	}
	if err := migrations.CheckCurrent(ctx, st.DB); err != nil {
		t.Fatal(err)
	}
	down, err := migrations.Down(ctx, st.DB)
	if err != nil || len(down) != len(up) {
		t.Fatalf("down: %v %v", down, err)
	}
	if err := migrations.CheckCurrent(ctx, st.DB); err == nil {
		t.Fatal("CheckCurrent passes on a rolled-back database")
	}
	var tables int
	if err := st.DB.NewRaw("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users','projects','provider_connections')").Scan(ctx, &tables); err != nil || tables != 0 {
		t.Fatalf("%d tables left after rolling back (%v)", tables, err)
	}
	if again, err := migrations.Up(ctx, st.DB); err != nil || len(again) != len(up) {
		t.Fatalf("up again: %v %v", again, err)
	}
}
