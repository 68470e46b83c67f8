package postgres

import (
	"errors"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/sqlstore"
)

// TestOpenReadOnly: the health check reads a database of an older schema
// as it is and can change nothing.
func TestOpenReadOnly(t *testing.T) {
	url := pgtest.URL(t)
	db, err := Open(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := &lobby.Node{SiteID: 1, Name: "node-a", Started: time.Now(), Heartbeat: time.Now()}
	if err := db.RegisterNode(t.Context(), n, "ins", time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := sqlstore.MigrateConfig{Dialect: store.Postgres, DB: db.sqldb, Migrations: mustSub(migrations, "migrations"), River: riverMigrations(nil)}
	if err := sqlstore.MigrateTo(t.Context(), cfg, 10); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if v, err := ro.SchemaVersion(t.Context()); err != nil || v != 10 {
		t.Fatalf("SchemaVersion through the read-only store = %d, %v; want 10, as left", v, err)
	}
	if ns, err := ro.ListNodes(t.Context()); err != nil || len(ns) != 1 {
		t.Fatalf("ListNodes = %+v, %v", ns, err)
	}
	if err := ro.SetNodeMode(t.Context(), 1, lobby.NodeDraining); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a write through the read-only store: %v, want it refused", err)
	}
	if _, err := OpenReadOnly(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", nil); err == nil {
		t.Fatal("OpenReadOnly of an unreachable database succeeded")
	}
}
