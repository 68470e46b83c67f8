// Package cluster keeps a node's place in the cluster: its row in the
// store (one live process per site ID, kept by a heartbeat), its mode
// (normal, draining, or maintenance while the database's schema is one its
// binary may not serve), and the lease of the singleton duties (pool
// stocking, release timers), which one node holds at a time, in a term
// that grows at each change of holder.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// SingletonLease names the lease of the singleton duties.
const SingletonLease = "singletons"

// DefaultStaleAfter is how long a node may go without a heartbeat before
// it counts as dead.
const DefaultStaleAfter = 10 * time.Second

// Config configures a member. Zero durations take the defaults.
type Config struct {
	Store store.Store
	// Node is this node: SiteID, Name, Address, Version, and in
	// SchemaVersion the schema version its binary knows. When that is
	// not 0, each heartbeat reads the database's schema too, and the node
	// is in maintenance mode while it may not serve it (store.Schema).
	Node   lobby.Node
	Logger *slog.Logger
	Now    func() time.Time

	// HeartbeatEvery is how often the node says it is alive (1 s);
	// StaleAfter is how long without a heartbeat makes it dead (10 s).
	HeartbeatEvery, StaleAfter time.Duration
	// LeaseTTL is how long the singleton lease lasts unrenewed (4 s);
	// the holder renews it every RenewEvery (1 s). A new leader takes
	// over within LeaseTTL of the old one dying.
	LeaseTTL, RenewEvery time.Duration
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("cluster: no store")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.HeartbeatEvery, time.Second)
	def(&c.StaleAfter, DefaultStaleAfter)
	def(&c.LeaseTTL, 4*time.Second)
	def(&c.RenewEvery, time.Second)
	if c.RenewEvery >= c.LeaseTTL {
		return fmt.Errorf("cluster: lease renewal every %s cannot keep a %s lease", c.RenewEvery, c.LeaseTTL)
	}
	return nil
}

// Member is this node's membership.
type Member struct {
	cfg      Config
	log      *slog.Logger
	instance string

	leader atomic.Bool
	term   atomic.Int64
	lost   atomic.Bool

	mu     sync.Mutex
	mode   lobby.NodeMode
	reason string // why it is in maintenance mode
}

// DuplicateSiteError refuses a node whose site ID a live node holds.
type DuplicateSiteError struct {
	Other lobby.Node
	Seen  time.Duration // since the other's last heartbeat, by its own clock's record
}

func (e *DuplicateSiteError) Error() string {
	return fmt.Sprintf("site ID %d is held by node %q (%s, release %s), which is alive: give this node its own --site-id, or stop that node first",
		e.Other.SiteID, e.Other.Name, orNone(e.Other.Address), e.Other.Version)
}

func orNone(s string) string {
	if s == "" {
		return "no address"
	}
	return s
}

// Join registers the node. When another process holds the site ID, it
// watches that process's heartbeat for a little over two beats: if it
// moves, the other node is alive and Join fails with *DuplicateSiteError;
// if not, the other node died without saying so, and this one takes over.
func Join(ctx context.Context, cfg Config) (*Member, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m := &Member{cfg: cfg, log: cfg.Logger.With("component", "cluster"), instance: lobby.NewID("ins"), mode: cfg.Node.Mode}
	if m.mode == "" {
		m.mode = lobby.NodeNormal
	}
	reason, err := m.schemaReason(ctx)
	if err != nil {
		return nil, err
	}
	if reason != "" {
		m.mode, m.reason = lobby.NodeMaintenance, reason
		m.log.Warn("this node starts in maintenance mode: only administrators can sign in", "reason", reason)
	}
	n := cfg.Node
	n.Mode, n.Started, n.Heartbeat = m.mode, cfg.Now(), cfg.Now()
	err = cfg.Store.RegisterNode(ctx, &n, m.instance, n.Heartbeat.Add(-cfg.StaleAfter))
	if errors.Is(err, store.ErrConflict) {
		err = m.takeOver(ctx, &n)
	}
	if err != nil {
		return nil, err
	}
	m.campaign(ctx)
	return m, nil
}

func (m *Member) takeOver(ctx context.Context, n *lobby.Node) error {
	other, err := m.cfg.Store.GetNode(ctx, n.SiteID)
	if err != nil {
		return fmt.Errorf("read the node holding site ID %d: %w", n.SiteID, err)
	}
	m.log.Info("site ID held by another process: checking whether it is alive", "site_id", n.SiteID, "node", other.Name)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2*m.cfg.HeartbeatEvery + m.cfg.HeartbeatEvery/2):
	}
	again, err := m.cfg.Store.GetNode(ctx, n.SiteID)
	if err == nil && again.Heartbeat.After(other.Heartbeat) {
		return &DuplicateSiteError{Other: *again}
	}
	n.Started, n.Heartbeat = m.cfg.Now(), m.cfg.Now()
	err = m.cfg.Store.RegisterNode(ctx, n, m.instance, other.Heartbeat.Add(time.Microsecond))
	if errors.Is(err, store.ErrConflict) {
		if cur, gerr := m.cfg.Store.GetNode(ctx, n.SiteID); gerr == nil {
			return &DuplicateSiteError{Other: *cur}
		}
	}
	if err == nil {
		m.log.Warn("took over the site ID of a node that stopped without saying so", "site_id", n.SiteID, "previous", other.Name)
	}
	return err
}

// Instance identifies this process in the store.
func (m *Member) Instance() string { return m.instance }

// SiteID is this node's site ID.
func (m *Member) SiteID() int { return m.cfg.Node.SiteID }

// Leader reports whether this node holds the singleton lease now.
func (m *Member) Leader() bool { return m.leader.Load() && !m.lost.Load() }

// Term is the singleton lease's term when this node last held it.
func (m *Member) Term() int64 { return m.term.Load() }

// Lost reports that another process took this node's site ID over (this
// one was thought dead): it must stop taking work.
func (m *Member) Lost() bool { return m.lost.Load() }

// Mode is the mode this node reports.
func (m *Member) Mode() lobby.NodeMode {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mode
}

// SetMode changes the mode this node acts in (the store's row, read at
// each heartbeat, overrides it).
func (m *Member) SetMode(mode lobby.NodeMode) {
	m.mu.Lock()
	m.mode = mode
	m.mu.Unlock()
}

// Maintenance says why this node is in maintenance mode (the database's
// schema against its binary's, and what to do); "" when it is not.
func (m *Member) Maintenance() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.mode != lobby.NodeMaintenance:
		return ""
	case m.reason == "":
		return "an operator set it"
	}
	return m.reason
}

// schemaReason reads the database's schema: why this node may not serve
// it, or "".
func (m *Member) schemaReason(ctx context.Context) (string, error) {
	binary := m.cfg.Node.SchemaVersion
	if binary == 0 {
		return "", nil
	}
	s, err := m.cfg.Store.Schema(ctx)
	if err != nil {
		return "", fmt.Errorf("read the database's schema version: %w", err)
	}
	return s.Maintenance(binary), nil
}

// campaign tries to take or renew the singleton lease once. A node that
// is draining or in maintenance mode gives it up at once.
func (m *Member) campaign(ctx context.Context) {
	if mode := m.Mode(); m.lost.Load() || mode == lobby.NodeDraining || mode == lobby.NodeMaintenance {
		if m.leader.Load() && !m.lost.Load() {
			_ = m.cfg.Store.ReleaseLease(ctx, SingletonLease, m.instance)
		}
		m.setLeader(false, 0)
		return
	}
	l, held, err := m.cfg.Store.AcquireLease(ctx, SingletonLease, m.cfg.Node.SiteID, m.instance, m.cfg.Now(), m.cfg.LeaseTTL)
	if err != nil {
		// Unsure: stop acting as leader before the lease could have
		// expired for the others.
		if ctx.Err() == nil {
			m.log.Warn("renew the singleton lease", "err", err)
		}
		m.setLeader(false, 0)
		return
	}
	m.setLeader(held, l.Term)
}

func (m *Member) setLeader(held bool, term int64) {
	was := m.leader.Swap(held)
	if held {
		m.term.Store(term)
	}
	if was != held {
		if held {
			m.log.Info("this node now runs the singleton duties", "term", term)
		} else {
			m.log.Info("this node no longer runs the singleton duties")
		}
	}
}

// Run beats and campaigns until ctx ends, then leaves: it gives the lease
// up and marks its row stale, so that a successor (or this node
// restarted) takes over at once.
func (m *Member) Run(ctx context.Context) {
	beat := time.NewTicker(m.cfg.HeartbeatEvery)
	renew := time.NewTicker(m.cfg.RenewEvery)
	defer beat.Stop()
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			m.Leave()
			return
		case <-beat.C:
			m.beat(ctx)
		case <-renew.C:
			m.campaign(ctx)
		}
	}
}

func (m *Member) beat(ctx context.Context) {
	mode, err := m.cfg.Store.Heartbeat(ctx, m.cfg.Node.SiteID, m.instance, m.cfg.Now())
	switch {
	case errors.Is(err, store.ErrConflict):
		if !m.lost.Swap(true) {
			m.log.Error("another process took over this node's site ID (this node was thought dead): it stops taking work; restart it", "site_id", m.cfg.Node.SiteID)
			m.setLeader(false, 0)
		}
		return
	case err != nil:
		if ctx.Err() == nil {
			m.log.Warn("heartbeat", "err", err)
		}
		return
	}
	if m.cfg.Node.SchemaVersion == 0 {
		m.follow(mode, "")
		return
	}
	reason, err := m.schemaReason(ctx)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("heartbeat", "err", err)
		}
		return
	}
	// The schema decides maintenance mode, over what the row says; the
	// row shows it, so that `lobby nodes list` does too.
	want := mode
	switch {
	case reason != "" && mode != lobby.NodeMaintenance:
		want = lobby.NodeMaintenance
	case reason == "" && mode == lobby.NodeMaintenance:
		want = lobby.NodeNormal
	}
	if want != mode {
		if err := m.cfg.Store.SetNodeMode(ctx, m.cfg.Node.SiteID, want); err != nil {
			m.log.Warn("record this node's mode", "mode", want, "err", err)
		}
	}
	m.follow(want, reason)
}

// follow takes up a mode (and the reason for maintenance mode).
func (m *Member) follow(mode lobby.NodeMode, reason string) {
	m.mu.Lock()
	was, wasWhy := m.mode, m.reason
	m.mode, m.reason = mode, reason
	m.mu.Unlock()
	switch {
	case mode == lobby.NodeMaintenance && (was != mode || reason != wasWhy):
		m.log.Warn("this node is in maintenance mode: only administrators can sign in", "reason", reason)
	case was == lobby.NodeMaintenance && mode != was:
		m.log.Info("this node leaves maintenance mode: the database's schema is one it serves", "mode", mode)
	case was != mode:
		m.log.Info("node mode changed", "mode", mode)
	}
}

// Leave gives the lease up and marks this node's row stale, so that a
// successor (or this node restarted) takes over at once. Run calls it
// when it ends; it may be called again.
func (m *Member) Leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if m.leader.Load() {
		_ = m.cfg.Store.ReleaseLease(ctx, SingletonLease, m.instance)
		m.setLeader(false, 0)
	}
	if !m.lost.Load() {
		_, _ = m.cfg.Store.Heartbeat(ctx, m.cfg.Node.SiteID, m.instance, time.Unix(0, 1))
	}
}
