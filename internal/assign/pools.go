package assign

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Stock keeps one pool provisioned: at least MinSize desktops, at least
// MinFree of them free and running (or on their way), never more than
// MaxSize. It starts stopped free desktops before creating new ones, and
// records new desktops in the store (power "creating") before queueing
// their provisioning, so a second pass never creates them twice. hosts
// are the IDs of hosts that can take new desktops.
func (s *Service) Stock(ctx context.Context, poolID string, hosts []string) error {
	pool, err := s.Store.GetPool(ctx, poolID)
	if err != nil {
		return err
	}
	// Decide from the counts; list desktops only for what must be done.
	// After a connect or release (every kick) there is usually nothing.
	c, err := s.Store.PoolCounts(ctx, pool.ID)
	if err != nil {
		return err
	}
	need := pool.MinFree - c.Ready
	starts := min(max(need, 0), c.Idle)
	create := max(pool.MinSize-c.Total, need-c.Idle, 0)
	create = min(create, pool.MaxSize-c.Total)
	if starts > 0 {
		if err := s.startIdle(ctx, pool.ID, starts); err != nil {
			return err
		}
	}
	if create <= 0 {
		return nil
	}
	all, err := s.poolDesktops(ctx, pool.ID)
	if err != nil {
		return err
	}
	names := make(map[string]bool, len(all))
	for _, d := range all {
		names[d.Name] = true
	}
	// The counts were read before the list: never go past MaxSize.
	create = min(create, pool.MaxSize-len(all))
	if create <= 0 {
		return nil
	}
	if len(hosts) == 0 {
		return lobby.Errorf(lobby.KindUnavailable, "pool %s needs %d more desktop(s) but no host is linked: start an agent", pool.Name, create)
	}
	load, err := s.hostLoad(ctx, hosts)
	if err != nil {
		return err
	}
	n := 1
	for ; create > 0; create-- {
		for names[lobby.DesktopName(pool.NamePattern, n)] {
			n++
		}
		name := lobby.DesktopName(pool.NamePattern, n)
		names[name] = true
		host := leastLoaded(load)
		d := &lobby.Desktop{Name: name, HostID: host, PoolID: pool.ID, Power: lobby.PowerCreating, ConsoleKind: "vnc", Tags: []string{}, Created: s.Now()}
		if err := s.Store.CreateDesktop(ctx, d); errors.Is(err, store.ErrConflict) {
			create++ // a desktop of that name exists on the host outside the pool: take the next number
			continue
		} else if err != nil {
			return fmt.Errorf("record new desktop %s: %w", name, err)
		}
		load[host]++
		if _, err := s.Queue.Provision(ctx, d.ID, pool.Template); err != nil {
			return err
		}
		s.Logger.Info("provisioning desktop", "pool", pool.Name, "desktop", name, "host", host)
	}
	return nil
}

// startIdle starts (or resumes) up to n free desktops of the pool that are
// stopped or suspended.
func (s *Service) startIdle(ctx context.Context, poolID string, n int) error {
	for _, power := range []lobby.PowerState{lobby.PowerSuspended, lobby.PowerStopped} {
		opt := store.ListOptions{Limit: store.MaxLimit}
		for n > 0 {
			page, err := s.Store.ListDesktops(ctx, store.DesktopFilter{PoolID: poolID, Power: power}, opt)
			if err != nil {
				return err
			}
			for _, d := range page {
				if n == 0 || d.AssignedTo != "" {
					continue
				}
				op := "start"
				if d.Power == lobby.PowerSuspended {
					op = "resume"
				}
				if err := s.Store.SetDesktopPower(ctx, d.ID, lobby.PowerStarting, 0); err != nil {
					return err
				}
				if _, err := s.Queue.Power(ctx, d.ID, op); err != nil {
					return err
				}
				n--
			}
			if len(page) < opt.Limit {
				break
			}
			opt.After = page[len(page)-1].ID
		}
	}
	return nil
}

func (s *Service) poolDesktops(ctx context.Context, poolID string) ([]lobby.Desktop, error) {
	var all []lobby.Desktop
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.Store.ListDesktops(ctx, store.DesktopFilter{PoolID: poolID}, opt)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < opt.Limit {
			return all, nil
		}
		opt.After = page[len(page)-1].ID
	}
}

// hostLoad counts the desktops on each host.
func (s *Service) hostLoad(ctx context.Context, hosts []string) (map[string]int, error) {
	load := make(map[string]int, len(hosts))
	for _, h := range hosts {
		n := 0
		opt := store.ListOptions{Limit: store.MaxLimit}
		for {
			page, err := s.Store.ListDesktops(ctx, store.DesktopFilter{HostID: h}, opt)
			if err != nil {
				return nil, err
			}
			n += len(page)
			if len(page) < opt.Limit {
				break
			}
			opt.After = page[len(page)-1].ID
		}
		load[h] = n
	}
	return load, nil
}

func leastLoaded(load map[string]int) string {
	ids := make([]string, 0, len(load))
	for id := range load {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	best := ids[0]
	for _, id := range ids[1:] {
		if load[id] < load[best] {
			best = id
		}
	}
	return best
}

// DeleteExpired deletes the console tickets and API tokens that expired
// at the service's clock: a ticket lives 30 s, a token hours, and without
// this both tables grow by every connect and sign-in forever.
func (s *Service) DeleteExpired(ctx context.Context) error {
	now := s.Now()
	nt, err := s.Store.DeleteExpiredTickets(ctx, now)
	if err != nil {
		return err
	}
	nk, err := s.Store.DeleteExpiredTokens(ctx, now)
	if err != nil {
		return err
	}
	if nt+nk > 0 {
		s.Logger.Debug("deleted expired", "tickets", nt, "tokens", nk)
	}
	return nil
}

// Manager runs the engine's duties on a schedule: stocking pools and the
// timed release plans. One node runs it at a time.
type Manager struct {
	Service  *Service
	Hosts    func(context.Context) []string // hosts that can take new desktops (on any node)
	Interval time.Duration                  // default 5 s
	// KickGap is the least time between two passes over the pools kicked
	// (default 100 ms): under load every connect kicks its pool, and one
	// pass after a burst sees what all of them did.
	KickGap time.Duration
	// Leader, when set, says whether this node runs the singleton duties
	// now (cluster.Member.Leader); the others skip them.
	Leader func() bool
	kick   chan string
}

func (m *Manager) leads() bool { return m.Leader == nil || m.Leader() }

// NewManager returns a Manager; pass its Kick to Service.Kick.
func NewManager(s *Service, hosts func(context.Context) []string) *Manager {
	return &Manager{Service: s, Hosts: hosts, Interval: 5 * time.Second, KickGap: 100 * time.Millisecond, kick: make(chan string, 64)}
}

// Kick asks for a pass over a pool soon. It never blocks.
func (m *Manager) Kick(poolID string) {
	select {
	case m.kick <- poolID:
	default:
	}
}

// Run works until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(m.Interval)
	defer t.Stop()
	m.Pass(ctx)
	var last time.Time // of the last pass over kicked pools
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-m.kick:
			pools := map[string]bool{id: true}
			// Kicks arrive in bursts (every connect): wait out the gap,
			// taking every kick meanwhile, and stock each pool once.
			wait := time.NewTimer(time.Until(last.Add(m.KickGap)))
		gather:
			for {
				select {
				case id := <-m.kick:
					pools[id] = true
				case <-wait.C:
					break gather
				case <-ctx.Done():
					wait.Stop()
					return
				}
			}
			last = time.Now()
			if !m.leads() {
				continue
			}
			hosts := m.Hosts(ctx)
			for id := range pools {
				if err := m.Service.Stock(ctx, id, hosts); err != nil && ctx.Err() == nil {
					m.Service.Logger.Warn("stock pool", "pool", id, "err", err)
				}
			}
		case <-t.C:
			m.Pass(ctx)
		}
	}
}

// Pass stocks every pool, runs due releases and deletes expired console
// tickets and API tokens, once.
func (m *Manager) Pass(ctx context.Context) {
	if !m.leads() {
		return
	}
	log := m.Service.Logger
	if err := m.Service.DeleteExpired(ctx); err != nil && ctx.Err() == nil {
		log.Warn("delete expired tickets and tokens", "err", err)
	}
	if n, err := m.Service.ReleaseDue(ctx); err != nil && ctx.Err() == nil {
		log.Warn("timed releases", "err", err)
	} else if n > 0 {
		log.Info("released desktops by plan", "count", n)
	}
	pools, err := m.Service.Store.ListPools(ctx, store.ListOptions{Limit: store.MaxLimit})
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("list pools", "err", err)
		}
		return
	}
	hosts := m.Hosts(ctx)
	for _, p := range pools {
		if err := m.Service.Stock(ctx, p.ID, hosts); err != nil && ctx.Err() == nil {
			log.Warn("stock pool", "pool", p.Name, "err", err)
		}
	}
}
