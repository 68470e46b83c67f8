package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/health"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// TestOpenReadOnly: the health check reads a database of an older schema
// as it is, beside the node that has it open, and can change nothing.
func TestOpenReadOnly(t *testing.T) {
	db := open(t)
	n := &lobby.Node{SiteID: 1, Name: "node-a", Started: time.Now(), Heartbeat: time.Now()}
	if err := db.RegisterNode(t.Context(), n, "ins", time.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := sqlstore.MigrateConfig{Dialect: store.SQLite, DB: db.Writer(), Migrations: mustSub(migrations, "migrations"), River: riverMigrations(nil)}
	if err := sqlstore.MigrateTo(t.Context(), cfg, 10); err != nil {
		t.Fatal(err)
	}
	ro, err := OpenReadOnly(t.Context(), db.Path(), nil)
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
	// The health check reads it: its node records no health there.
	f := health.Gather(t.Context(), health.Source{Store: ro, From: "the test"})
	if f.StoreErr != nil {
		t.Fatalf("the health check cannot read a database of schema 10: %v", f.StoreErr)
	}
	if c, _ := health.Evaluate(f, health.Options{}).Check("ready/1"); c.Status != health.Warn || !strings.Contains(c.Detail, "records no health") {
		t.Errorf("ready/1 on schema 10 = %+v", c)
	}

	missing := filepath.Join(t.TempDir(), "none", "lobby.db")
	if _, err := OpenReadOnly(t.Context(), missing, nil); err == nil || !strings.Contains(err.Error(), "--data") {
		t.Fatalf("OpenReadOnly of a missing file: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing file created its directory (%v)", err)
	}
}
