package health

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Monitor defaults.
const (
	DefaultMonitorEvery = time.Second
	DefaultProbeEvery   = 5 * time.Second
	storeTimeout        = 2 * time.Second
)

// MonitorConfig configures a node's Monitor. Zero values take defaults.
type MonitorConfig struct {
	Store    store.Store
	SiteID   int
	Instance string // the cluster member's instance (cluster.Member.Instance)
	Watchdog *Watchdog
	Prober   *Prober
	Logger   *slog.Logger
	// Now is the node's clock, the one its heartbeats use: its skew
	// against the database's clock is what the monitor measures.
	Now func() time.Time

	Every      time.Duration // a round: clock, watchdog, and the record when due (1 s)
	ProbeEvery time.Duration // probes of the nodes' addresses (5 s)
	// RecordEvery is how often the round writes the node's health record
	// (default 5 rounds): at once when the node's readiness changed. The
	// record lists every agent linked to the node, a row of hundreds of
	// KiB with thousands of links; read by the health check, which calls
	// a record stale after cluster.DefaultStaleAfter (10 s).
	RecordEvery time.Duration

	// What the node knows of itself: the CA fingerprint (hex), its link
	// certificate (PEM), and its HTTPS certificate's expiry (a function,
	// as the listener comes after the monitor is made; nil for none).
	CAFingerprint  string
	LinkCert       string
	WebCertExpires func() time.Time
	// Links lists the agents linked to this node (nil: none).
	Links func() []store.AgentLink
}

// Monitor measures a node's health once a second, records it in the
// store every few seconds, and feeds its watchdog.
type Monitor struct {
	cfg MonitorConfig
	log *slog.Logger

	// The last record written: when, and whether it said the node was
	// ready (its reason why not names durations that change every round).
	recorded  time.Time
	lastReady bool

	mu     sync.Mutex
	probes []store.NodeProbe // the latest round of probes
	nodes  []lobby.Node      // the latest list, for the prober
}

// NewMonitor checks cfg and fills its defaults.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	if cfg.Store == nil || cfg.Watchdog == nil || cfg.SiteID == 0 {
		return nil, errors.New("health: a monitor needs a store, a watchdog and a site ID")
	}
	if cfg.Prober == nil {
		cfg.Prober = NewProber(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Every <= 0 {
		cfg.Every = DefaultMonitorEvery
	}
	if cfg.ProbeEvery <= 0 {
		cfg.ProbeEvery = DefaultProbeEvery
	}
	if cfg.RecordEvery <= 0 {
		cfg.RecordEvery = 5 * cfg.Every
	}
	return &Monitor{cfg: cfg, log: cfg.Logger.With("component", "health")}, nil
}

// Run records until ctx ends; the probes run beside it, so a slow peer
// never delays the store's round trip.
func (m *Monitor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); m.probeLoop(ctx) }()
	t := time.NewTicker(m.cfg.Every)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// round measures the clock against the database's, records the node's
// health when due, and tells the watchdog whether the store answered.
func (m *Monitor) round(ctx context.Context) {
	wd := m.cfg.Watchdog
	defer wd.Beat(LoopMonitor)
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	t0 := m.cfg.Now()
	db, err := m.cfg.Store.DatabaseTime(sctx)
	t1 := m.cfg.Now()
	if err != nil {
		m.storeFailed(ctx, err)
		return
	}
	rtt := t1.Sub(t0)
	skew := t0.Add(rtt / 2).Sub(db)
	nodes, err := m.cfg.Store.ListNodes(sctx)
	if err != nil {
		m.storeFailed(ctx, err)
		return
	}
	m.checkHeartbeat(nodes, t1)
	m.mu.Lock()
	m.nodes = nodes
	probes := m.probes
	m.mu.Unlock()
	h := &store.NodeHealth{
		SiteID: m.cfg.SiteID, Instance: m.cfg.Instance, ClockSkew: skew, StoreRTT: rtt,
		CAFingerprint: m.cfg.CAFingerprint, LinkCert: m.cfg.LinkCert, Probes: probes,
	}
	if why := wd.Check(); why != nil {
		h.NotReady = why.Error()
	}
	if !m.recorded.IsZero() && t1.Sub(m.recorded) < m.cfg.RecordEvery && (h.NotReady == "") == m.lastReady {
		wd.StoreOK() // the store answered; the record is not due
		return
	}
	h.LoopLag = wd.TakeLag() // the worst since the last record
	if m.cfg.WebCertExpires != nil {
		h.WebCertExpires = m.cfg.WebCertExpires()
	}
	if m.cfg.Links != nil {
		h.Links = m.cfg.Links()
	}
	if err := m.cfg.Store.RecordNodeHealth(sctx, h); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// The node's row was removed (an operator forgot it): the
			// store answers, and the cluster member says what to do.
			wd.StoreOK()
			return
		}
		m.storeFailed(ctx, err)
		return
	}
	m.recorded, m.lastReady = t1, h.NotReady == ""
	wd.StoreOK()
}

func (m *Monitor) storeFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopping
	}
	m.cfg.Watchdog.StoreFailed(err)
	m.log.Debug("the store did not answer the health round", "err", err)
}

// checkHeartbeat beats LoopHeartbeat while this node's heartbeat in the
// store is fresh by its own clock (the one it is written with), so a
// stuck heartbeat loop makes the watchdog say so.
func (m *Monitor) checkHeartbeat(nodes []lobby.Node, now time.Time) {
	for _, n := range nodes {
		if n.SiteID == m.cfg.SiteID && now.Sub(n.Heartbeat) < m.cfg.Watchdog.cfg.LoopLimit {
			m.cfg.Watchdog.Beat(LoopHeartbeat)
		}
	}
}

// probeLoop probes every recent node's address, this node's own
// included (is its advertised address reachable at all?).
func (m *Monitor) probeLoop(ctx context.Context) {
	// The first probes come soon after the first round listed the nodes.
	t := time.NewTimer(m.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(m.cfg.ProbeEvery)
		}
		m.mu.Lock()
		nodes := m.nodes
		m.mu.Unlock()
		targets, results := probeRecent(ctx, m.cfg.Prober, nodes, m.cfg.Now(), m.cfg.SiteID)
		at := m.cfg.Now()
		probes := make([]store.NodeProbe, len(targets))
		for i, n := range targets {
			probes[i] = store.NodeProbe{SiteID: n.SiteID, Address: n.Address, At: at, RTT: results[i].RTT}
			if err := results[i].Err; err != nil {
				probes[i].Error = err.Error()
			}
		}
		m.mu.Lock()
		m.probes = probes
		m.mu.Unlock()
	}
}
