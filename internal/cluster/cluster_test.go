package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func config(st store.Store, site int, name string) cluster.Config {
	return cluster.Config{Store: st, Node: lobby.Node{SiteID: site, Name: name, Address: "http://" + name, Version: "test"},
		Logger:         slog.New(slog.DiscardHandler),
		HeartbeatEvery: 40 * time.Millisecond, StaleAfter: 400 * time.Millisecond,
		LeaseTTL: 300 * time.Millisecond, RenewEvery: 40 * time.Millisecond}
}

// start joins and runs a member until the returned stop is called (or the
// test ends).
func start(t *testing.T, cfg cluster.Config) (*cluster.Member, func()) {
	t.Helper()
	m, err := cluster.Join(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return m, stop
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDuplicateSiteIDIsRefused(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	start(t, config(st, 3, "node-a"))
	_, err := cluster.Join(context.Background(), config(st, 3, "node-b"))
	var dup *cluster.DuplicateSiteError
	if !errors.As(err, &dup) || !strings.Contains(err.Error(), `node "node-a"`) || !strings.Contains(err.Error(), "site ID 3") {
		t.Fatalf("second node on site ID 3: %v, want a refusal naming node-a", err)
	}
	n, err := st.GetNode(context.Background(), 3)
	if err != nil || n.Name != "node-a" {
		t.Fatalf("node 3 = %+v, %v; want node-a kept", n, err)
	}
}

func TestRestartTakesTheSiteIDBack(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	// A graceful stop frees the site ID at once.
	_, stop := start(t, config(st, 1, "node-a"))
	stop()
	m, _ := start(t, config(st, 1, "node-a"))
	// A crash (no more heartbeats, no goodbye) frees it once the watcher
	// sees the heartbeat stand still.
	crashed, err := cluster.Join(context.Background(), config(st, 2, "node-c"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := cluster.Join(context.Background(), config(st, 2, "node-c"))
	if err != nil {
		t.Fatalf("restart after a crash: %v", err)
	}
	if again.Instance() == crashed.Instance() || !m.Leader() {
		t.Fatalf("instances %s and %s, leader %v", again.Instance(), crashed.Instance(), m.Leader())
	}
}

func TestOneLeaderAndTakeover(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	a, stopA := start(t, config(st, 1, "node-a"))
	b, _ := start(t, config(st, 2, "node-b"))
	eventually(t, "one leader", func() bool { return a.Leader() != b.Leader() })
	for range 20 {
		if a.Leader() && b.Leader() {
			t.Fatal("two leaders at once")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !a.Leader() {
		t.Fatalf("node-a joined first but is not the leader")
	}
	termA := a.Term()
	stopA()
	eventually(t, "node-b takes over", b.Leader)
	if b.Term() <= termA {
		t.Errorf("term after takeover %d, want more than %d", b.Term(), termA)
	}
	// A node drained through the store gives the lease up.
	if err := st.SetNodeMode(context.Background(), 2, lobby.NodeDraining); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the draining node gives up the lease", func() bool { return !b.Leader() })
}

func TestLostSiteID(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	a, _ := start(t, config(st, 1, "node-a"))
	eventually(t, "leader", a.Leader)
	// Someone forces the row over (as a takeover after a long pause would).
	n := &lobby.Node{SiteID: 1, Name: "node-z", Started: time.Now(), Heartbeat: time.Now()}
	if err := st.RegisterNode(context.Background(), n, "other", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node-a notices it lost its site ID", a.Lost)
	if a.Leader() {
		t.Error("a node that lost its site ID still leads")
	}
}

// TestMaintenanceFollowsTheSchema moves the database's schema under a
// running node: contracted beyond its binary, the node goes to
// maintenance mode (and says so in its row, and gives the singleton duties
// up); compatible again, it comes back.
func TestMaintenanceFollowsTheSchema(t *testing.T) {
	t.Parallel()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "lobby.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := config(db, 1, "node-a")
	cfg.Node.SchemaVersion = sqlstore.SchemaVersion
	m, _ := start(t, cfg)
	eventually(t, "node-a leads", m.Leader)
	if m.Mode() != lobby.NodeNormal || m.Maintenance() != "" {
		t.Fatalf("on its own schema: mode %s, maintenance %q", m.Mode(), m.Maintenance())
	}
	rowMode := func() lobby.NodeMode {
		n, err := db.GetNode(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		return n.Mode
	}

	floor := func(v int64) {
		if _, err := db.Writer().Exec(`UPDATE schema_compat SET floor_version = ?`, v); err != nil {
			t.Fatal(err)
		}
	}
	floor(sqlstore.SchemaVersion + 1) // a newer release contracted it
	eventually(t, "node-a is in maintenance mode", func() bool {
		return m.Mode() == lobby.NodeMaintenance && rowMode() == lobby.NodeMaintenance && !m.Leader()
	})
	if why := m.Maintenance(); !strings.Contains(why, "upgrade this node") {
		t.Errorf("maintenance reason = %q", why)
	}
	floor(0)
	eventually(t, "node-a is back to normal and leads", func() bool {
		return m.Mode() == lobby.NodeNormal && rowMode() == lobby.NodeNormal && m.Leader() && m.Maintenance() == ""
	})

	// A binary that expects a newer schema than the database's (started
	// without migrating) starts in maintenance mode.
	newer := config(db, 2, "node-b")
	newer.Node.SchemaVersion = sqlstore.SchemaVersion + 1
	b, _ := start(t, newer)
	if b.Mode() != lobby.NodeMaintenance || !strings.Contains(b.Maintenance(), "lobby admin db migrate") {
		t.Fatalf("node-b: mode %s, maintenance %q", b.Mode(), b.Maintenance())
	}
	if n, err := db.GetNode(context.Background(), 2); err != nil || n.Mode != lobby.NodeMaintenance {
		t.Fatalf("node-b's row = %+v, %v; want maintenance", n, err)
	}
}
