package health_test

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/health"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

var quiet = slog.New(slog.DiscardHandler)

func openStore(t *testing.T, dialect string) store.Store {
	t.Helper()
	var st store.Store
	var err error
	if dialect == store.Postgres {
		st, err = postgres.Open(t.Context(), pgtest.URL(t), quiet)
	} else {
		st, err = sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lobby.db"), quiet)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// member is one in-process node: its cluster membership, its watchdog and
// monitor, and its ping answered over real HTTP.
type member struct {
	m  *cluster.Member
	wd *health.Watchdog
}

// startMember joins site to the cluster in st with the clock now, and runs
// its heartbeat and health monitor until the test ends.
func startMember(t *testing.T, st store.Store, ca *pki.CA, site int, name string, now func() time.Time) *member {
	t.Helper()
	wd := health.NewWatchdog(health.WatchdogConfig{Logger: quiet})
	var m *cluster.Member
	srv := httptest.NewServer(health.PingHandler(func() health.Ping {
		return health.Ping{SiteID: site, Name: name, Instance: m.Instance(), Time: now()}
	}))
	t.Cleanup(srv.Close)
	var err error
	m, err = cluster.Join(t.Context(), cluster.Config{Store: st, Logger: quiet, Now: now,
		Node: lobby.Node{SiteID: site, Name: name, Address: srv.URL, Version: "test", SchemaVersion: sqlstore.SchemaVersion}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: string(rune('0' + site)), Name: name}, time.Now(), pki.NodeLifetime)
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.NewMonitor(health.MonitorConfig{Store: st, SiteID: site, Instance: m.Instance(), Watchdog: wd, Logger: quiet, Now: now,
		ProbeEvery: 200 * time.Millisecond, Every: 100 * time.Millisecond,
		CAFingerprint: pki.FingerprintHex(ca.Fingerprint()), LinkCert: pki.CertPEM(cert.Certificate[0])})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { m.Run(ctx); done <- struct{}{} }()
	go func() { mon.Run(ctx); done <- struct{}{} }()
	go func() { wd.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done; <-done })
	return &member{m: m, wd: wd}
}

// TestClockSkew runs two nodes on one real database, the second with a
// clock 5 minutes ahead: the health check names it, with its own message,
// and finds the rest healthy (each node reaches the other over HTTP).
func TestClockSkew(t *testing.T) {
	for _, dialect := range []string{store.SQLite, store.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, dialect)
			key, err := pki.ParseClusterKey(pki.NewClusterKeyString())
			if err != nil {
				t.Fatal(err)
			}
			ca, err := pki.LoadOrCreateCA(t.Context(), st, key, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			startMember(t, st, ca, 1, "node-a", time.Now)
			startMember(t, st, ca, 2, "node-b", func() time.Time { return time.Now().Add(5 * time.Minute) })

			prober := health.NewProber(0)
			defer prober.Close()
			check := &health.Checker{Source: health.Source{Store: st, Database: dialect, From: "the test", Prober: prober, KnownSchema: sqlstore.SchemaVersion,
				LoadCA: func(ctx context.Context) (*x509.Certificate, error) {
					c, err := pki.LoadCA(ctx, st, key)
					return certOf(c), err
				}}}
			var r *health.Report
			deadline := time.Now().Add(60 * time.Second)
			for {
				r = check.Run(t.Context())
				// Wait until both nodes probed each other.
				if _, ok := r.Check("reach/2-1"); ok && !hasStatus(r, "reach/", health.Warn) {
					if _, ok := r.Check("reach/1-2"); ok {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("the nodes never probed each other: %s", text(r))
				}
				time.Sleep(100 * time.Millisecond)
			}
			c, _ := r.Check("clock/2")
			if c.Status != health.Fail || !strings.Contains(c.Detail, "clock skew: node 2 (node-b)'s clock is 5m0s ahead of the database's, beyond the limit of 1m0s") || c.Fix == "" {
				t.Errorf("clock/2 = %+v, want a failure naming node-b's skew of 5 minutes", c)
			}
			for _, c := range r.Checks {
				if c.Status != health.OK && c.ID != "clock/2" {
					t.Errorf("check %s: %+v, want ok", c.ID, c)
				}
			}
			if !r.Failed() {
				t.Error("the report with a skewed clock does not fail")
			}
			// The skewed node's heartbeats are 5 minutes in the future by the
			// database's clock; corrected, it counts as alive, and as dead
			// once it stops.
			if !r.Nodes[1].Alive || *r.Nodes[1].ClockSkewMS < 299000 {
				t.Errorf("node 2 = %+v, want alive with a skew of about 300000 ms", r.Nodes[1])
			}

			// A limit above the skew passes it.
			wide := &health.Checker{Source: check.Source, Options: health.Options{MaxClockSkew: 10 * time.Minute}}
			if c, _ := wide.Run(t.Context()).Check("clock/2"); c.Status != health.OK {
				t.Errorf("clock/2 with a 10 min limit = %+v", c)
			}

			// The wrong cluster key is its own failure.
			other, _ := pki.ParseClusterKey(pki.NewClusterKeyString())
			wrong := &health.Checker{Source: check.Source}
			wrong.Source.LoadCA = func(ctx context.Context) (*x509.Certificate, error) {
				c, err := pki.LoadCA(ctx, st, other)
				return certOf(c), err
			}
			if c, _ := wrong.Run(t.Context()).Check("cluster-key"); c.Status != health.Fail || !strings.Contains(c.Detail, "does not unseal") {
				t.Errorf("cluster-key with another key = %+v", c)
			}
		})
	}
}

func hasStatus(r *health.Report, prefix string, s health.Status) bool {
	for _, c := range r.Checks {
		if strings.HasPrefix(c.ID, prefix) && c.Status == s {
			return true
		}
	}
	return false
}

func text(r *health.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	return b.String()
}

// caCert is the certificate of ca, or nil.
func certOf(ca *pki.CA) *x509.Certificate {
	if ca == nil {
		return nil
	}
	return ca.Cert
}

// TestMonitorRecordsOnReadinessChange: with a record due only every hour,
// the monitor writes the node's record on its first round, not again while
// nothing changes, and at once when the node stops being ready (its
// heartbeat stands still: the node's cluster loop is not run here).
func TestMonitorRecordsOnReadinessChange(t *testing.T) {
	t.Parallel()
	st := openStore(t, store.SQLite)
	m, err := cluster.Join(t.Context(), cluster.Config{Store: st, Logger: quiet,
		Node: lobby.Node{SiteID: 1, Name: "node-a", Address: "http://127.0.0.1:1", Version: "test", SchemaVersion: sqlstore.SchemaVersion}})
	if err != nil {
		t.Fatal(err)
	}
	// The monitor beats the heartbeat loop for LoopLimit after the join's
	// heartbeat; the loop counts as stuck LoopLimit after that.
	wd := health.NewWatchdog(health.WatchdogConfig{Logger: quiet, LoopLimit: 3 * time.Second})
	mon, err := health.NewMonitor(health.MonitorConfig{Store: st, SiteID: 1, Instance: m.Instance(), Watchdog: wd, Logger: quiet,
		Every: 20 * time.Millisecond, ProbeEvery: time.Hour, RecordEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { mon.Run(ctx); done <- struct{}{} }()
	go func() { wd.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	record := func() *store.NodeHealth {
		hs, err := st.ListNodeHealth(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) == 0 {
			return nil
		}
		return &hs[0]
	}
	var first time.Time
	deadline := time.Now().Add(60 * time.Second)
	for {
		h := record()
		switch {
		case h == nil:
		case h.NotReady == "" && first.IsZero():
			first = h.Recorded
		case h.NotReady == "" && !h.Recorded.Equal(first):
			t.Fatalf("the record was written again at %v (first at %v) while the node stayed ready: not due for an hour", h.Recorded, first)
		case h.NotReady != "":
			if first.IsZero() {
				t.Fatalf("the first record says the node is not ready (%s): the test machine was too slow to see it ready", h.NotReady)
			}
			if !strings.Contains(h.NotReady, "cluster heartbeat has not run") {
				t.Errorf("NotReady = %q, want the stuck heartbeat", h.NotReady)
			}
			// Still not ready, for the same cause: the reason's duration
			// grows every round, and is not a change of readiness.
			time.Sleep(300 * time.Millisecond)
			if again := record(); !again.Recorded.Equal(h.Recorded) {
				t.Fatalf("the record was written again at %v (%s) while the node stayed unready: not due for an hour", again.Recorded, again.NotReady)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record saying the node is not ready: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
