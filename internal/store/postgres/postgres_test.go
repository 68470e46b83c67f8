package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storetest"
)

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
	// River's migrator sees its migrations as applied.
	m, err := rivermigrate.New(riverpgxv5.New(db.Pool()), nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Validate(t.Context(), nil)
	if err != nil || !res.OK {
		t.Fatalf("rivermigrate.Validate = %+v, %v", res, err)
	}
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

func TestSchemaTooNew(t *testing.T) {
	url := pgtest.URL(t)
	db, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Pool().Exec(t.Context(), `INSERT INTO `+sqlstore.VersionTable+` (version_id, is_applied) VALUES ($1, TRUE)`, SchemaVersion+1)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), url, nil)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer database: %v, want ErrSchemaTooNew", err)
	}
	t.Log(err)
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
	m, _ := rivermigrate.New(riverpgxv5.New(db.Pool()), nil)
	if res, err := m.Validate(t.Context(), nil); err != nil || !res.OK {
		t.Fatalf("rivermigrate.Validate = %+v, %v", res, err)
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

func TestExplainAssignFree(t *testing.T) {
	db := open(t)
	plan, err := db.ExplainAssignFree(t.Context(), "pool_x")
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + plan)
	if !strings.Contains(plan, "desktops_free") {
		t.Fatalf("AssignFree does not use the index desktops_free:\n%s", plan)
	}
}
