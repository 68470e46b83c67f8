package postgres

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storetest"
)

// open opens a store in a new schema (with DefaultMaxConns connections,
// enough for the concurrency tests to contend for real).
func open(tb testing.TB) *DB {
	tb.Helper()
	db, err := Open(context.Background(), pgtest.URL(tb), nil)
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
	storetest.RiverWorks(t, riverpgxv5.New(db.Pool()))
}

func TestConcurrentOpen(t *testing.T) {
	url := pgtest.URL(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(t.Context(), url, nil)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaUpgrades(t *testing.T) {
	url := pgtest.URL(t)
	storetest.SchemaUpgrades(t, func(noMigrate bool) (store.Store, sqlstore.MigrateConfig, error) {
		db, err := OpenWith(t.Context(), url, Options{NoMigrate: noMigrate})
		if err != nil {
			return nil, sqlstore.MigrateConfig{}, err
		}
		return db, db.MigrateConfig(), nil
	})
}

// TestNoMigrateEmptyDatabase: opened without migrating, an empty
// database stays empty, and a node refuses to run on it.
func TestNoMigrateEmptyDatabase(t *testing.T) {
	db, err := OpenWith(t.Context(), pgtest.URL(t), Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := db.Schema(t.Context())
	if err != nil || s != (store.Schema{}) {
		t.Fatalf("Schema of an empty database = %+v, %v", s, err)
	}
	if err := sqlstore.CheckNoMigrate(s); err == nil || !strings.Contains(err.Error(), "no Lobby schema yet") {
		t.Fatalf("CheckNoMigrate of an empty database: %v", err)
	}
	var n int
	if err := db.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables in the database after opening it without migrating (%v)", n, err)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	db := open(t)
	cfg := sqlstore.MigrateConfig{Dialect: store.Postgres, DB: db.sqldb, Migrations: mustSub(migrations, "migrations"), River: riverMigrations(nil)}
	if err := sqlstore.MigrateTo(t.Context(), cfg, 0); err != nil {
		t.Fatal(err)
	}
	var n int
	err := db.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename != $1`, sqlstore.VersionTable).Scan(&n)
	if err != nil || n != 0 {
		t.Fatalf("%d tables left after migrating down (%v)", n, err)
	}
	if err := sqlstore.Migrate(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	storetest.RiverWorks(t, riverpgxv5.New(db.Pool()))
}

func TestDefaultMaxConns(t *testing.T) {
	db := open(t)
	if got := db.Pool().Config().MaxConns; got != DefaultMaxConns() {
		t.Errorf("MaxConns = %d, want %d", got, DefaultMaxConns())
	}
	db2, err := Open(t.Context(), pgtest.URL(t)+"&pool_max_conns=3", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if got := db2.Pool().Config().MaxConns; got != 3 {
		t.Errorf("MaxConns with pool_max_conns=3: %d", got)
	}
}

func TestUnreachable(t *testing.T) {
	_, err := Open(t.Context(), "postgres://lobby:secret@127.0.0.1:1/lobby?connect_timeout=2", nil)
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "secret") || !strings.Contains(msg, "postgres://lobby@127.0.0.1:1/lobby") || !strings.Contains(msg, "check that") {
		t.Fatalf("unclear error: %v", err)
	}
	t.Log(err)
}

// TestExplainAssignFree checks that AssignFree finds a free desktop in the
// partial index desktops_free, in the plan for a given pool and in the
// generic plan a prepared statement may settle on, with and without
// statistics.
func TestExplainAssignFree(t *testing.T) {
	db := open(t)
	pools := storetest.Populate(t, db, 10, 100)
	for _, analyze := range []bool{false, true} {
		if analyze {
			if _, err := db.Pool().Exec(t.Context(), "ANALYZE"); err != nil {
				t.Fatal(err)
			}
		}
		plan, err := db.ExplainAssignFree(t.Context(), pools[3].ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("analyzed %v:\n%s", analyze, plan)
		if n := strings.Count(plan, "Index Scan using desktops_free"); n != 2 {
			t.Fatalf("AssignFree does not use the index desktops_free in both plans:\n%s", plan)
		}
	}
	// The session state of the connection used for the generic plan was
	// restored: AssignFree still works on every connection.
	for range 10 {
		a := &lobby.Assignment{UserID: storetest.User(t, db).ID, PoolID: pools[3].ID}
		if _, err := db.AssignFree(t.Context(), a); err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkAssignFree: see storetest.BenchmarkAssignFree.
// BENCH_POOL_MAX_CONNS sets the pool size (default DefaultMaxConns).
func BenchmarkAssignFree(b *testing.B) {
	url := pgtest.URL(b)
	if n := os.Getenv("BENCH_POOL_MAX_CONNS"); n != "" {
		url += "&pool_max_conns=" + n
	}
	db, err := Open(b.Context(), url, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkAssignFree(b, db, func(tb testing.TB) {
		if _, err := db.Pool().Exec(tb.Context(), "ANALYZE"); err != nil {
			tb.Fatal(err)
		}
	})
}
