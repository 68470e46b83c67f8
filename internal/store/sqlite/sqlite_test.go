package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/riverqueue/river/riverdriver/riversqlite"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storetest"
)

func open(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), filepath.Join(tb.TempDir(), "lobby.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Exercise(t, func(t *testing.T) store.Store { return open(t) })
}

func TestSchemaVersion(t *testing.T) {
	db := open(t)
	v, err := db.SchemaVersion(t.Context())
	if err != nil || v != SchemaVersion {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, SchemaVersion)
	}
}

func TestRiver(t *testing.T) {
	db := open(t)
	storetest.RiverWorks(t, riversqlite.New(db.Writer()))
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "lobby.db")
	ctx := t.Context()
	for i := range 2 {
		db, err := Open(ctx, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			if v, err := db.GetSetting(ctx, "k"); err != nil || v != "v" {
				t.Fatalf("after reopening: %q, %v", v, err)
			}
		}
		if err := db.SetSetting(ctx, "k", "v"); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			continue // -wal and -shm are removed on a clean close
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v: others may read it", p, fi.Mode().Perm())
		}
	}
}

func TestSchemaUpgrades(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lobby.db")
	storetest.SchemaUpgrades(t, func(noMigrate bool) (store.Store, sqlstore.MigrateConfig, error) {
		db, err := OpenWith(t.Context(), path, Options{NoMigrate: noMigrate})
		if err != nil {
			return nil, sqlstore.MigrateConfig{}, err
		}
		return db, db.MigrateConfig(), nil
	})
}

func TestNoMigrateNeedsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lobby.db")
	_, err := OpenWith(t.Context(), path, Options{NoMigrate: true})
	if err == nil || !strings.Contains(err.Error(), "start without --no-migrate") {
		t.Fatalf("OpenWith(NoMigrate) of a missing file: %v", err)
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("the refused open left %s behind (%v)", path, serr)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	db := open(t)
	cfg := sqlstore.MigrateConfig{Dialect: store.SQLite, DB: db.Writer(), Migrations: mustSub(migrations, "migrations"), River: riverMigrations(nil)}
	if err := sqlstore.MigrateTo(t.Context(), cfg, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Writer().QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != ?`, sqlstore.VersionTable).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables left after migrating down (%v)", n, err)
	}
	if err := sqlstore.Migrate(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	storetest.RiverWorks(t, riversqlite.New(db.Writer()))
}

func TestDirectoryNotWritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), filepath.Join(file, "lobby.db"), nil)
	if err == nil || !strings.Contains(err.Error(), "is not writable") || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("Open under a file: %v", err)
	}
	t.Log(err)
}

// TestExplainAssignFree checks that AssignFree finds a free desktop with
// one probe of the partial index desktops_free, with and without
// statistics.
func TestExplainAssignFree(t *testing.T) {
	db := open(t)
	pools := storetest.Populate(t, db, 10, 100)
	for _, analyze := range []bool{false, true} {
		if analyze {
			if _, err := db.Writer().Exec("ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		plan, err := db.ExplainAssignFree(t.Context(), pools[3].ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("analyzed %v:\n%s", analyze, plan)
		if !strings.Contains(plan, "USING INDEX desktops_free (pool_id=?)") {
			t.Fatalf("AssignFree does not use the index desktops_free:\n%s", plan)
		}
	}
}

// BenchmarkAssignFree: see storetest.BenchmarkAssignFree.
func BenchmarkAssignFree(b *testing.B) {
	db := open(b)
	storetest.BenchmarkAssignFree(b, db, func(tb testing.TB) {
		if _, err := db.Writer().Exec("ANALYZE"); err != nil {
			tb.Fatal(err)
		}
	})
}
