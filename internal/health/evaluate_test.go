package health

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// healthy is the facts of a two-node cluster with one agent on each node,
// everything as it should be. Tests break one thing each.
func healthy(t *testing.T) *Facts {
	t.Helper()
	ca, err := pki.NewCA(t0.Add(-24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fp := pki.FingerprintHex(sha256.Sum256(ca.Cert.Raw))
	f := &Facts{From: "lobby health on test", Database: "postgres://lobby@db:5432/lobby", Dialect: store.Postgres,
		StoreRTT: time.Millisecond, Now: t0, Schema: 11, KnownSchema: 11, CA: ca.Cert,
		Health: map[int]store.NodeHealth{}, Probes: map[int]Probe{},
		Lease: &store.Lease{Name: "singletons", Holder: 1, Term: 3, Expires: t0.Add(3 * time.Second)}}
	for _, site := range []int{1, 2} {
		name := map[int]string{1: "node-a", 2: "node-b"}[site]
		addr := map[int]string{1: "http://10.0.0.1:8080", 2: "http://10.0.0.2:8080"}[site]
		f.Nodes = append(f.Nodes, lobby.Node{SiteID: site, Name: name, Address: addr, Version: "1.0", SchemaVersion: 11,
			Mode: lobby.NodeNormal, Started: t0.Add(-time.Hour), Heartbeat: t0.Add(-500 * time.Millisecond)})
		cert, err := ca.IssueTLS(pki.Identity{Kind: pki.KindNode, ID: map[int]string{1: "1", 2: "2"}[site], Name: name}, t0.Add(-time.Hour), pki.NodeLifetime)
		if err != nil {
			t.Fatal(err)
		}
		h := store.NodeHealth{SiteID: site, Instance: "ins", Recorded: t0.Add(-time.Second), ClockSkew: 3 * time.Millisecond, StoreRTT: 2 * time.Millisecond,
			CAFingerprint: fp, LinkCert: pki.CertPEM(cert.Certificate[0]),
			Links: []store.AgentLink{{HostID: "hst_" + name, Host: "host-" + name, Since: t0.Add(-time.Hour), RTT: time.Millisecond}}}
		for _, to := range []int{1, 2} {
			h.Probes = append(h.Probes, store.NodeProbe{SiteID: to, Address: map[int]string{1: "http://10.0.0.1:8080", 2: "http://10.0.0.2:8080"}[to], At: t0.Add(-2 * time.Second), RTT: time.Millisecond})
		}
		f.Health[site] = h
		f.Hosts = append(f.Hosts, lobby.Host{ID: "hst_" + name, Name: "host-" + name, State: lobby.HostUp, SiteID: site, LastSeen: t0, CertSerial: "ab"})
		f.Probes[site] = Probe{RTT: time.Millisecond, Ping: Ping{SiteID: site, Name: name}}
	}
	return f
}

func TestEvaluateHealthy(t *testing.T) {
	r := Evaluate(healthy(t), Options{})
	if r.Failed() || r.Status != OK {
		var b strings.Builder
		_ = r.WriteText(&b)
		t.Fatalf("a healthy cluster's report is %s:\n%s", r.Status, b.String())
	}
	for _, id := range []string{"store", "cluster-key", "versions", "schema", "leader", "node/1", "ready/2", "store/1", "clock/2",
		"cert/1", "web-cert/2", "port/1", "reach/1-2", "reach/2-1", "reach/2-2", "agent/host-node-a", "agent/host-node-b"} {
		if _, ok := r.Check(id); !ok {
			t.Errorf("the report has no check %s", id)
		}
	}
	if len(r.Nodes) != 2 || !r.Nodes[0].Leader || r.Nodes[1].Leader || !r.Nodes[1].Ready || len(r.Agents) != 2 || r.Agents[0].RTTMS == nil {
		t.Errorf("nodes %+v, agents %+v: want two ready nodes, node 1 leading, each agent with a round trip", r.Nodes, r.Agents)
	}
	if len(r.Reach) != 6 { // 2 from the checker, 4 between the nodes
		t.Errorf("reach has %d rows, want 6: %+v", len(r.Reach), r.Reach)
	}
}

// TestEvaluateFailures breaks one thing at a time: each gives its own
// check, status, message, cause and fix.
func TestEvaluateFailures(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(f *Facts)
		id     string
		status Status
		detail string // a substring of the detail
		cause  string // a substring of the cause
	}{
		{"clock ahead", func(f *Facts) { skew(f, 2, 5*time.Minute) },
			"clock/2", Fail, "clock skew: node 2 (node-b)'s clock is 5m0s ahead of the database's, beyond the limit of 1m0s", "not synchronized"},
		{"clock behind", func(f *Facts) { skew(f, 1, -90*time.Second) },
			"clock/1", Fail, "1m30s behind the database's", "NTP"},
		{"dead node", func(f *Facts) {
			f.Nodes[1].Heartbeat = t0.Add(-45 * time.Second)
			setHealth(f, 2, func(h *store.NodeHealth) { h.Recorded = t0.Add(-45 * time.Second) })
		}, "node/2", Fail, "node 2 (node-b) is dead: no heartbeat for 45", "crashed"},
		{"stopped node", func(f *Facts) { f.Nodes[1].Heartbeat = time.Unix(0, 1) }, "node/2", Fail, "stopped", "stopped"},
		{"agent on a dead node", func(f *Facts) { f.Nodes[1].Heartbeat = t0.Add(-time.Hour) }, "agent/host-node-b", Fail, "which is dead", "--hub"},
		{"not ready", func(f *Facts) {
			setHealth(f, 1, func(h *store.NodeHealth) { h.NotReady = "the database has not answered for 6s (limit 5s)" })
		}, "ready/1", Fail, "/readyz answers 503): the database has not answered", "database"},
		{"stale record", func(f *Facts) { setHealth(f, 1, func(h *store.NodeHealth) { h.Recorded = t0.Add(-30 * time.Second) }) },
			"ready/1", Fail, "has not recorded its health for 30s", "health monitor is stuck"},
		{"no record", func(f *Facts) { delete(f.Health, 2) }, "ready/2", Warn, "records no health", "release"},
		{"slow scheduler", func(f *Facts) { setHealth(f, 1, func(h *store.NodeHealth) { h.LoopLag = 3 * time.Second }) },
			"ready/1", Warn, "ran 3s late", "starved"},
		{"slow store", func(f *Facts) { setHealth(f, 2, func(h *store.NodeHealth) { h.StoreRTT = 400 * time.Millisecond }) },
			"store/2", Warn, "slowly: round trip 400 ms", "overloaded"},
		{"node cannot reach another", func(f *Facts) {
			setHealth(f, 1, func(h *store.NodeHealth) { h.Probes[1].Error = "connection refused: nothing listens there" })
		}, "reach/1-2", Fail, "node 1 (node-a) cannot reach node 2 (node-b) at http://10.0.0.2:8080: connection refused", "firewall"},
		{"port 0", func(f *Facts) {
			f.Nodes[0].Address = "http://127.0.0.1:0"
			f.Probes[1] = Probe{Err: errors.New("connection refused: nothing listens there")}
		}, "port/1", Fail, "cannot reach it at http://127.0.0.1:0", "port 0"},
		{"wildcard address", func(f *Facts) {
			setHealth(f, 2, func(h *store.NodeHealth) {
				h.Probes[1].Address, h.Probes[1].Error = "https://0.0.0.0:8443", "no answer in time"
			})
		}, "reach/2-2", Fail, "its own advertised address https://0.0.0.0:8443", "names no host"},
		{"agent down", func(f *Facts) { f.Hosts[0].State = lobby.HostDown }, "agent/host-node-a", Fail, "not linked to any node", "agent is stopped"},
		{"slow agent", func(f *Facts) { setHealth(f, 1, func(h *store.NodeHealth) { h.Links[0].RTT = time.Second }) },
			"agent/host-node-a", Warn, "round trip 1s", "network"},
		{"wrong key", func(f *Facts) { f.CA, f.CAErr = nil, pki.ErrWrongKey }, "cluster-key", Fail, "does not unseal", "not the key"},
		{"no key", func(f *Facts) { f.CA, f.CAErr = nil, ErrNoClusterKey }, "cluster-key", Fail, "no cluster key", "LOBBY_CLUSTER_KEY"},
		{"no CA", func(f *Facts) { f.CA, f.CAErr = nil, store.ErrNotFound }, "cluster-key", Fail, "no cluster CA", "no node has started"},
		{"link cert of another CA", func(f *Facts) {
			other, _ := pki.NewCA(t0)
			f.CA = other.Cert
			f.CAErr = nil
			setHealth(f, 1, func(h *store.NodeHealth) { h.CAFingerprint = pki.FingerprintHex(sha256.Sum256(other.Cert.Raw)) })
		}, "cert/1", Fail, "does not verify against the cluster CA", "another cluster"},
		{"link cert near expiry", func(f *Facts) { f.Now = t0.Add(pki.NodeLifetime - 5*24*time.Hour); freshen(f) },
			"cert/1", Warn, "expires on", "90 days"},
		{"https cert expired", func(f *Facts) {
			setHealth(f, 2, func(h *store.NodeHealth) { h.WebCertExpires = t0.Add(-time.Hour) })
		}, "web-cert/2", Fail, "expired on", "lifetime"},
		{"no leader", func(f *Facts) { f.Lease.Expires = t0.Add(-time.Minute) }, "leader", Fail, "no live node runs the singleton duties", "draining"},
		{"releases differ", func(f *Facts) { f.Nodes[1].Version = "1.1" }, "versions", Warn, "1.0 on site 1; 1.1 on site 2", "rolling upgrade"},
		{"schema behind", func(f *Facts) { f.Nodes[1].SchemaVersion = 10 }, "schema", Warn, "node 2 (node-b) is at schema 10", "rolling upgrade"},
		{"schema maintenance", func(f *Facts) { f.Nodes[1].SchemaVersion, f.Nodes[1].Mode = 10, lobby.NodeMaintenance }, "schema", Fail, "at schema version 11 but", "migrated"},
		{"draining", func(f *Facts) { f.Nodes[0].Mode = lobby.NodeDraining }, "node/1", Warn, "draining", "operator"},
		{"no nodes", func(f *Facts) { f.Nodes = nil }, "nodes", Fail, "no node is registered", "another database"},
		{"hosts unreadable", func(f *Facts) { f.Hosts, f.HostsErr = nil, errors.New("list hosts: no such column: pending_serial") },
			"agents", Warn, "the hosts cannot be read", "schema"},
		{"store down", func(f *Facts) { f.StoreErr = errors.New("dial tcp: connection refused") }, "store", Fail, "cannot read the database", "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := healthy(t)
			tt.break_(f)
			r := Evaluate(f, Options{})
			c, ok := r.Check(tt.id)
			if !ok {
				t.Fatalf("no check %s in %+v", tt.id, r.Checks)
			}
			if c.Status != tt.status || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Cause, tt.cause) || c.Fix == "" {
				t.Fatalf("check %s = %+v\nwant status %s, detail with %q, cause with %q and a fix", tt.id, c, tt.status, tt.detail, tt.cause)
			}
			if r.Failed() != (tt.status == Fail) {
				t.Errorf("Failed() = %v with a %s check", r.Failed(), tt.status)
			}
			// Nothing else broke.
			for _, o := range r.Checks {
				if o.ID != tt.id && o.Status == Fail && !strings.HasPrefix(tt.name, "dead") && tt.name != "stopped node" && tt.name != "agent on a dead node" && tt.name != "link cert of another CA" {
					t.Errorf("check %s failed too: %+v", o.ID, o)
				}
			}
		})
	}
}

// TestEvaluateSkewLimit: the limit is the caller's.
func TestEvaluateSkewLimit(t *testing.T) {
	f := healthy(t)
	skew(f, 2, 45*time.Second)
	if c, _ := Evaluate(f, Options{}).Check("clock/2"); c.Status != OK {
		t.Errorf("45 s under the default 60 s limit: %+v", c)
	}
	if c, _ := Evaluate(f, Options{MaxClockSkew: 30 * time.Second}).Check("clock/2"); c.Status != Fail || !strings.Contains(c.Detail, "limit of 30s") {
		t.Errorf("45 s over a 30 s limit: %+v", c)
	}
}

// TestHeartbeatCorrectedBySkew: a node whose clock is behind writes old
// heartbeats; corrected by its measured skew, it is alive.
func TestHeartbeatCorrectedBySkew(t *testing.T) {
	f := healthy(t)
	f.Nodes[1].Heartbeat = t0.Add(-2 * time.Minute)
	setHealth(f, 2, func(h *store.NodeHealth) { h.ClockSkew = -2 * time.Minute })
	r := Evaluate(f, Options{MaxClockSkew: 5 * time.Minute})
	if c, _ := r.Check("node/2"); c.Status != OK {
		t.Errorf("node 2 with a clock 2 min behind: %+v, want alive", c)
	}
}

// skew sets a node's clock skew; its heartbeats, written by its clock,
// move with it.
func skew(f *Facts, site int, d time.Duration) {
	setHealth(f, site, func(h *store.NodeHealth) { h.ClockSkew = d })
	f.Nodes[site-1].Heartbeat = f.Nodes[site-1].Heartbeat.Add(d)
}

func setHealth(f *Facts, site int, fn func(h *store.NodeHealth)) {
	h := f.Health[site]
	h.Probes = append([]store.NodeProbe(nil), h.Probes...)
	h.Links = append([]store.AgentLink(nil), h.Links...)
	fn(&h)
	f.Health[site] = h
}

// freshen moves every timestamp to f.Now, as if the cluster ran on.
func freshen(f *Facts) {
	for i := range f.Nodes {
		f.Nodes[i].Heartbeat = f.Now
	}
	for site, h := range f.Health {
		h.Recorded = f.Now
		f.Health[site] = h
	}
	f.Lease.Expires = f.Now.Add(time.Second)
}
