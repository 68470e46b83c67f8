package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// OpenSchema opens the one database of a SchemaUpgrades run, migrating it
// unless noMigrate; the store's Close closes the MigrateConfig's DB too.
type OpenSchema func(noMigrate bool) (store.Store, sqlstore.MigrateConfig, error)

// SchemaUpgrades checks, on one database, what a binary does with the
// schemas of other releases: an older one is left alone without migrating
// (maintenance mode) and then migrated; a newer one whose floor allows
// this binary is served as it is (a rolling upgrade); one whose floor is
// above this binary is refused, with its own message.
func SchemaUpgrades(t *testing.T, open OpenSchema) {
	ctx := context.Background()
	const binary = sqlstore.SchemaVersion
	with := func(noMigrate bool, fn func(s store.Store, cfg sqlstore.MigrateConfig)) {
		t.Helper()
		s, cfg, err := open(noMigrate)
		if err != nil {
			t.Fatalf("open (no migrate: %v): %v", noMigrate, err)
		}
		defer s.Close()
		fn(s, cfg)
	}
	schema := func(s store.Store) store.Schema {
		t.Helper()
		got, err := s.Schema(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	exec := func(cfg sqlstore.MigrateConfig, query string) {
		t.Helper()
		if _, err := cfg.DB.ExecContext(ctx, query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}

	// A new database: migrated to this binary's version, nothing contracted.
	with(false, func(s store.Store, cfg sqlstore.MigrateConfig) {
		if got := schema(s); got != (store.Schema{Version: binary}) || got.State(binary) != store.SchemaCurrent {
			t.Fatalf("new database: %+v, want version %d, floor 0", got, binary)
		}
		// Back to the schema before the floor existed: an older release's.
		if err := sqlstore.MigrateTo(ctx, cfg, 10); err != nil {
			t.Fatal(err)
		}
	})

	// Without migrating, the older schema stays, and the node knows why it
	// must stay in maintenance mode and what fixes it.
	with(true, func(s store.Store, cfg sqlstore.MigrateConfig) {
		got := schema(s)
		if got != (store.Schema{Version: 10}) || got.State(binary) != store.SchemaBehind {
			t.Fatalf("not migrated: %+v, want version 10, behind", got)
		}
		if why := got.Maintenance(binary); !strings.Contains(why, fmt.Sprintf("database schema 10, this node expects %d", binary)) || !strings.Contains(why, "lobby admin db migrate") {
			t.Errorf("maintenance reason = %q", why)
		}
		cur, steps, err := sqlstore.Pending(ctx, cfg)
		if err != nil || cur.Version != 10 || len(steps) == 0 || steps[len(steps)-1].Version != binary ||
			!slices.ContainsFunc(steps, func(s sqlstore.Step) bool { return s.Name == "00012_schema_compat.sql" && !s.Contract() }) {
			t.Fatalf("Pending = %+v, %+v, %v; want the expand migrations up to %d", cur, steps, err, binary)
		}
		if err := sqlstore.Migrate(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		if got := schema(s); got.Version != binary || got.Maintenance(binary) != "" {
			t.Fatalf("after Migrate: %+v", got)
		}
		// A newer release migrated it with an expand migration (its floor
		// stays): this binary keeps serving, and migrates nothing.
		exec(cfg, fmt.Sprintf("INSERT INTO %s (version_id, is_applied) VALUES (%d, TRUE)", sqlstore.VersionTable, binary+1))
	})
	with(false, func(s store.Store, cfg sqlstore.MigrateConfig) {
		if got := schema(s); got != (store.Schema{Version: binary + 1}) || got.State(binary) != store.SchemaAhead || got.Maintenance(binary) != "" {
			t.Fatalf("newer, compatible: %+v", got)
		}
		if _, steps, err := sqlstore.Pending(ctx, cfg); err != nil || len(steps) != 0 {
			t.Fatalf("Pending on a newer database = %+v, %v; want none", steps, err)
		}
		// The newer release contracted it: only binaries that know
		// binary+1 may run on it.
		exec(cfg, fmt.Sprintf("UPDATE schema_compat SET floor_version = %d", binary+1))
		got := schema(s)
		if got.State(binary) != store.SchemaIncompatible || !strings.Contains(got.Maintenance(binary), "upgrade this node") {
			t.Fatalf("contracted: %+v, maintenance %q", got, got.Maintenance(binary))
		}
	})
	for _, noMigrate := range []bool{false, true} {
		_, _, err := open(noMigrate)
		if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprintf("needs a Lobby that knows schema %d or later; this binary knows %d", binary+1, binary)) {
			t.Fatalf("open a contracted newer database (no migrate: %v): %v; want ErrSchemaTooNew naming both versions", noMigrate, err)
		}
	}
}
