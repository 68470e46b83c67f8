package health

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/store"
)

// Options are the limits a check holds the cluster to. Zero values take
// the defaults.
type Options struct {
	// MaxClockSkew is how far a node's clock may be from the database's
	// (60 s).
	MaxClockSkew time.Duration
	// CertWarn is how close to its expiry a certificate is worth a
	// warning (14 days).
	CertWarn time.Duration
	// SlowRTT is the round trip worth a warning (250 ms).
	SlowRTT time.Duration
	// SlowLoop is the lateness of a node's scheduler worth a warning (2 s).
	SlowLoop time.Duration
	// StaleAfter is how long without a heartbeat or a health record makes
	// a node dead (cluster.DefaultStaleAfter).
	StaleAfter time.Duration
}

// Defaults.
const (
	DefaultMaxClockSkew = 60 * time.Second
	DefaultCertWarn     = 14 * 24 * time.Hour
	DefaultSlowRTT      = 250 * time.Millisecond
	DefaultSlowLoop     = 2 * time.Second
)

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MaxClockSkew, DefaultMaxClockSkew)
	def(&o.CertWarn, DefaultCertWarn)
	def(&o.SlowRTT, DefaultSlowRTT)
	def(&o.SlowLoop, DefaultSlowLoop)
	def(&o.StaleAfter, cluster.DefaultStaleAfter)
	return o
}

// ErrNoClusterKey is LoadCA's error when the checker was given no cluster
// key.
var ErrNoClusterKey = errors.New("no cluster key was given")

// view is what Evaluate makes of one node.
type view struct {
	n      lobby.Node
	name   string
	rec    *store.NodeHealth // nil when the node records no health
	recAge time.Duration     // by the database's clock
	hbAge  time.Duration     // by the database's clock, corrected by the node's skew
	alive  bool
	fresh  bool // rec is recent
	leader bool // it holds the singleton lease
}

// Evaluate turns facts into a report. It does no I/O.
func Evaluate(f *Facts, o Options) *Report {
	o = o.withDefaults()
	r := &Report{Generated: f.Now, From: f.From, Database: f.Database, Status: OK, MaxClockSkew: o.MaxClockSkew.String(),
		Nodes: []NodeRow{}, Reach: []ReachRow{}, Agents: []AgentRow{}, Checks: []Check{}}
	if !storeCheck(r, f) {
		return r
	}
	keyCheck(r, f, o)
	views, rows := nodeViews(f, o)
	r.Nodes = rows
	if len(views) == 0 {
		r.add(Check{ID: "nodes", Name: "nodes", Subject: "cluster", Status: Fail,
			Detail: "no node is registered in this database",
			Cause:  "no lobby server has started on it: the URL names another database, or another schema (search_path)",
			Fix:    "check the --postgres URL (or LOBBY_POSTGRES) against the nodes' own, or start a node: lobby server --postgres URL --site-id N"})
		return r
	}
	versionChecks(r, f, views)
	leaderCheck(r, f, views)
	for _, v := range views {
		nodeChecks(r, f, o, v, views)
	}
	agentChecks(r, f, o, views)
	return r
}

// storeCheck reports whether the checker read the store.
func storeCheck(r *Report, f *Facts) bool {
	what := "PostgreSQL"
	if f.Dialect == store.SQLite {
		what = "SQLite"
	}
	if f.StoreErr != nil {
		r.add(Check{ID: "store", Name: "store", Subject: "database", Status: Fail,
			Detail: fmt.Sprintf("%s cannot read the database %s: %v", f.From, f.Database, f.StoreErr),
			Cause:  "the database server is down or unreachable from here, or the URL, user, password or schema is wrong",
			Fix:    "check the database server and the --postgres URL (or LOBBY_POSTGRES, or --data for a standalone node); the nodes need it too"})
		return false
	}
	r.add(Check{ID: "store", Name: "store", Subject: "database", Status: OK,
		Detail: fmt.Sprintf("%s %s answers %s in %s; schema version %d", what, f.Database, f.From, fmtDur(f.StoreRTT), f.Schema)})
	return true
}

func keyCheck(r *Report, f *Facts, o Options) {
	c := Check{ID: "cluster-key", Name: "cluster key", Subject: "cluster CA", Status: Fail}
	switch {
	case f.CA == nil && f.CAErr == nil:
		return // a node's own report: it runs with the CA
	case errors.Is(f.CAErr, ErrNoClusterKey):
		c.Detail = "no cluster key was given, so the nodes' certificates cannot be checked against the cluster CA"
		c.Cause = "LOBBY_CLUSTER_KEY is not set where lobby health runs"
		c.Fix = "run lobby health with the nodes' LOBBY_CLUSTER_KEY (a standalone node's key is read from --data/cluster.key)"
	case errors.Is(f.CAErr, pki.ErrWrongKey):
		c.Detail = "the cluster key given does not unseal this cluster's CA"
		c.Cause = "LOBBY_CLUSTER_KEY here is not the key this cluster was created with"
		c.Fix = "give lobby health the nodes' LOBBY_CLUSTER_KEY; a node with another key refuses to start"
	case errors.Is(f.CAErr, store.ErrNotFound):
		c.Detail = "the database holds no cluster CA"
		c.Cause = "no node has started on this database yet, or it is not a Lobby database"
		c.Fix = "check the database URL, or start the first node: lobby server --postgres URL"
	case f.CAErr != nil:
		c.Detail = fmt.Sprintf("the cluster CA cannot be read: %v", f.CAErr)
		c.Cause = "the CA's record in the database is damaged"
		c.Fix = "restore the database's settings table from a backup"
	default:
		left := f.CA.NotAfter.Sub(f.Now)
		c.Status, c.Detail = OK, fmt.Sprintf("the cluster key unseals the cluster CA (SHA-256 %s), valid until %s", pki.FingerprintHex(sha256.Sum256(f.CA.Raw)), day(f.CA.NotAfter))
		if left < o.CertWarn {
			c.Status, c.Cause = Warn, "the cluster CA is near the end of its 20 years"
			if left <= 0 {
				c.Status, c.Cause = Fail, "the cluster CA has expired: no link can be made"
			}
			c.Fix = "make a new cluster (new database and key) and join the hosts to it"
		}
	}
	r.add(c)
}

func nodeViews(f *Facts, o Options) ([]*view, []NodeRow) {
	var views []*view
	rows := []NodeRow{}
	for _, n := range f.Nodes {
		v := &view{n: n, name: fmt.Sprintf("node %d (%s)", n.SiteID, n.Name)}
		skew := time.Duration(0)
		if h, ok := f.Health[n.SiteID]; ok {
			v.rec = &h
			v.recAge = f.Now.Sub(h.Recorded)
			v.fresh = v.recAge < o.StaleAfter
			skew = h.ClockSkew
		}
		// The heartbeat and the lease are written by the node's clock:
		// bring them to the database's before comparing.
		v.hbAge = f.Now.Sub(n.Heartbeat.Add(-skew))
		v.alive = v.hbAge < o.StaleAfter
		v.leader = v.alive && f.Lease != nil && f.Lease.Holder == n.SiteID && f.Lease.Expires.Add(-skew).After(f.Now)
		views = append(views, v)
		row := NodeRow{SiteID: n.SiteID, Name: n.Name, Address: n.Address, Version: n.Version, SchemaVersion: n.SchemaVersion,
			Mode: string(n.Mode), Alive: v.alive, Leader: v.leader, HeartbeatAge: v.hbAge.Seconds(), Ready: v.alive}
		if v.rec != nil {
			row.ClockSkewMS, row.StoreRTTMS, row.Agents = msPtr(v.rec.ClockSkew), msPtr(v.rec.StoreRTT), len(v.rec.Links)
			row.NotReady = v.rec.NotReady
			row.Ready = v.alive && v.fresh && v.rec.NotReady == ""
			if c, err := pki.ParseCertPEM(v.rec.LinkCert); err == nil {
				row.CertExpires = &c.NotAfter
			}
		}
		rows = append(rows, row)
	}
	return views, rows
}

func versionChecks(r *Report, f *Facts, views []*view) {
	byVersion := map[string][]string{}
	var schemaOff []string
	worst := OK
	for _, v := range views {
		if !v.alive {
			continue
		}
		byVersion[v.n.Version] = append(byVersion[v.n.Version], fmt.Sprint(v.n.SiteID))
		if v.n.SchemaVersion != f.Schema {
			schemaOff = append(schemaOff, fmt.Sprintf("%s is at schema %d", v.name, v.n.SchemaVersion))
			if v.n.Mode == lobby.NodeMaintenance || v.n.SchemaVersion > f.Schema {
				worst = Fail
			} else if worst == OK {
				worst = Warn
			}
		}
	}
	c := Check{ID: "versions", Name: "versions", Subject: "cluster", Status: OK}
	if len(byVersion) > 1 {
		var parts []string
		for ver, sites := range byVersion {
			parts = append(parts, fmt.Sprintf("%s on site %s", ver, strings.Join(sites, ", ")))
		}
		sort.Strings(parts)
		c.Status, c.Detail = Warn, "the live nodes run different releases: "+strings.Join(parts, "; ")
		c.Cause = "a rolling upgrade is under way, or a node was left out of one"
		c.Fix = "upgrade every node to the same release, one at a time"
	} else {
		for ver := range byVersion {
			c.Detail = fmt.Sprintf("every live node runs release %s", ver)
		}
		if c.Detail == "" {
			c.Detail = "no node is alive to compare"
		}
	}
	r.add(c)
	s := Check{ID: "schema", Name: "schema", Subject: "cluster", Status: worst}
	if len(schemaOff) == 0 {
		s.Detail = fmt.Sprintf("the database is at schema version %d, and so is every live node", f.Schema)
	} else {
		s.Detail = fmt.Sprintf("the database is at schema version %d but %s", f.Schema, strings.Join(schemaOff, "; "))
		s.Cause = "a newer release migrated the database while these nodes kept running (a rolling upgrade), or the database was restored from an older backup"
		s.Fix = "upgrade those nodes to the release that migrated the database; a node in maintenance mode refuses user sign-ins until then"
	}
	r.add(s)
	if f.KnownSchema > 0 && f.KnownSchema != f.Schema {
		r.add(Check{ID: "schema/checker", Name: "schema", Subject: f.From, Status: Warn,
			Detail: fmt.Sprintf("this check knows schema version %d; the database is at %d", f.KnownSchema, f.Schema),
			Cause:  "the health check is of another release than the one that migrated the database",
			Fix:    "run the health check of the release the nodes run"})
	}
}

func leaderCheck(r *Report, f *Facts, views []*view) {
	c := Check{ID: "leader", Name: "leader", Subject: "cluster", Status: Fail,
		Cause: "every node is dead or draining, or the holder cannot write to the database",
		Fix:   "start a node, or resume a drained one: lobby nodes resume SITE"}
	c.Detail = "no live node runs the singleton duties (pool stocking, release timers)"
	for _, v := range views {
		if v.leader {
			c = Check{ID: "leader", Name: "leader", Subject: "cluster", Status: OK,
				Detail: fmt.Sprintf("%s runs the singleton duties (lease term %d)", v.name, f.Lease.Term)}
		}
	}
	r.add(c)
}

// day writes a date and the days left.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func findProbe(ps []store.NodeProbe, site int) (store.NodeProbe, bool) {
	i := slices.IndexFunc(ps, func(p store.NodeProbe) bool { return p.SiteID == site })
	if i < 0 {
		return store.NodeProbe{}, false
	}
	return ps[i], true
}
