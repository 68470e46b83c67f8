package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"lobby/internal/store"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

func TestContractFloor(t *testing.T) {
	tests := []struct {
		name, sql string
		floor     int64
		err       string
	}{
		{"expand", "-- +goose Up\nCREATE TABLE t (x INTEGER);", 0, ""},
		{"contract", "-- lobby:contract floor=14\n-- +goose Up\nALTER TABLE t DROP COLUMN y;", 14, ""},
		{"spaces", "--   lobby:contract   floor=7  \n", 7, ""},
		{"no floor", "-- lobby:contract\n", 0, "must read `-- lobby:contract floor=N`"},
		{"bad floor", "-- lobby:contract floor=x\n", 0, "must read"},
		{"twice", "-- lobby:contract floor=3\n-- lobby:contract floor=4\n", 0, "more than one"},
		{"mentioned, not marked", "-- a migration marked `-- lobby:contract floor=N` is one\n", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sqlstore.ContractFloor(tt.sql)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ContractFloor = %d, %v; want an error with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.floor {
				t.Fatalf("ContractFloor = %d, %v; want %d", got, err, tt.floor)
			}
		})
	}
}

// TestContract runs a next release's expand, contract and expand
// migrations on a real database: the floor rises before the contract
// migration runs (it records the floor it sees), the binary of the
// release before is then refused, and migrating down lowers it again.
func TestContract(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = sqlstore.SchemaVersion
	next := sqlstore.WithMigrations(db.MigrateConfig(),
		sqlstore.TestMigration{Version: n + 1, Name: "add", Up: "CREATE TABLE probe_a (x INTEGER)", Down: "DROP TABLE probe_a"},
		sqlstore.TestMigration{Version: n + 2, Name: "contract", Floor: n + 1,
			Up: "CREATE TABLE seen AS SELECT floor_version AS f FROM schema_compat", Down: "DROP TABLE seen"},
		sqlstore.TestMigration{Version: n + 3, Name: "add more", Up: "CREATE TABLE probe_b (x INTEGER)", Down: "DROP TABLE probe_b"})

	cur, steps, err := sqlstore.Pending(ctx, next)
	if err != nil || cur.Version != n || len(steps) != 3 || steps[0].Contract() || !steps[1].Contract() || steps[1].Floor != n+1 {
		t.Fatalf("Pending = %+v, %+v, %v", cur, steps, err)
	}
	if err := sqlstore.MigrateTo(ctx, next, n+1); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Schema(ctx); s != (store.Schema{Version: n + 1}) || s.State(n) != store.SchemaAhead {
		t.Fatalf("after the expand migration: %+v, want floor 0: release N keeps serving", s)
	}
	if err := sqlstore.Migrate(ctx, next); err != nil {
		t.Fatal(err)
	}
	var seen int64
	if err := db.Writer().QueryRow("SELECT f FROM seen").Scan(&seen); err != nil || seen != n+1 {
		t.Fatalf("the contract migration saw floor %d (%v), want %d: the floor must rise before it runs", seen, err, n+1)
	}
	s, err := db.Schema(ctx)
	if err != nil || s != (store.Schema{Version: n + 3, Floor: n + 1}) {
		t.Fatalf("after the contract: %+v, %v", s, err)
	}
	if s.State(n) != store.SchemaIncompatible || s.State(n+1) != store.SchemaAhead {
		t.Fatalf("states: release N %v, N+1 %v", s.State(n), s.State(n+1))
	}
	// The release before refuses to migrate, or to run on it.
	err = sqlstore.Migrate(ctx, db.MigrateConfig())
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("knows schema %d or later; this binary knows %d", n+1, n)) {
		t.Fatalf("release N's Migrate on a contracted database: %v", err)
	}
	// Down past the contract: the floor goes back.
	if err := sqlstore.MigrateTo(ctx, next, n+1); err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Schema(ctx); s != (store.Schema{Version: n + 1}) {
		t.Fatalf("after migrating down past the contract: %+v, want floor 0", s)
	}
}

func TestBadContractMark(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lobby.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = sqlstore.SchemaVersion
	bad := sqlstore.WithMigrations(db.MigrateConfig(),
		sqlstore.TestMigration{Version: n + 1, Name: "floor above itself", Floor: n + 2, Up: "SELECT 1", Down: "SELECT 1"})
	if err := sqlstore.Migrate(ctx, bad); err == nil || !strings.Contains(err.Error(), "cannot be above its own version") {
		t.Fatalf("Migrate with a floor above its migration: %v", err)
	}
	if s, _ := db.Schema(ctx); s.Version != n {
		t.Fatalf("the refused migration changed the schema: %+v", s)
	}
}
