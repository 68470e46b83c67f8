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
