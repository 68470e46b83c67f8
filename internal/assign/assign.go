// Package assign decides which desktop a person gets: from the policies
// that cover them to a pool, from the pool to a free desktop, and back to
// the pool by the policy's release plan. It also keeps each pool stocked
// (min size, min free, never above max).
package assign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Queue is the part of the work queue the engine uses.
type Queue interface {
	Power(ctx context.Context, desktopID, op string) (jobs.Job, error)
	Provision(ctx context.Context, desktopID, template string) (jobs.Job, error)
}

// Sessions ends the live console sessions of a desktop (the gateway).
type Sessions interface {
	End(desktopID string) int
}

// Service hands out and takes back desktops.
type Service struct {
	Store    store.Store
	Queue    Queue
	Sessions Sessions
	Logger   *slog.Logger
	Now      func() time.Time
	// StartTimeout bounds how long Connect waits for an assigned desktop
	// that was stopped or suspended to come up.
	StartTimeout time.Duration
	// Kick, when set, asks the pool manager to look at a pool soon (after
	// a desktop was taken).
	Kick func(poolID string)
}

// Grant is the outcome of a successful Connect.
type Grant struct {
	Desktop    *lobby.Desktop
	Assignment *lobby.Assignment
	Policy     *lobby.Policy
	Reused     bool // the person already held this desktop
}

// Resolve finds the pool named (or with the ID) poolRef and the policy
// that gives it to u, highest priority first. It is the single path used by
// Connect and by the policy simulator, so the two cannot drift.
func (s *Service) Resolve(ctx context.Context, u *lobby.User, poolRef string) (*lobby.Pool, *lobby.Policy, error) {
	pool, err := s.pool(ctx, poolRef)
	if err != nil {
		return nil, nil, err
	}
	pols, err := s.PoliciesFor(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if pol := Winner(pols, pool.ID); pol != nil {
		return pool, pol, nil
	}
	return nil, nil, lobby.Errorf(lobby.KindForbidden, "no policy gives %s desktops from pool %q: ask an administrator for access", u.Username, pool.Name)
}

// Winner is the policy that gives pool poolID, from policies sorted as
// PoliciesFor returns them (highest priority first); nil when none does.
// Resolve, the portal's offers and the simulator all choose with it.
func Winner(pols []lobby.Policy, poolID string) *lobby.Policy {
	for i := range pols {
		for _, pid := range pols[i].Pools {
			if pid == poolID {
				return &pols[i]
			}
		}
	}
	return nil
}

// PoliciesFor returns the policies that cover u, highest priority first.
func (s *Service) PoliciesFor(ctx context.Context, u *lobby.User) ([]lobby.Policy, error) {
	var out []lobby.Policy
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		page, err := s.Store.ListPolicies(ctx, opt)
		if err != nil {
			return nil, fmt.Errorf("list policies: %w", err)
		}
		for _, p := range page {
			if p.Applies(u) {
				out = append(out, p)
			}
		}
		if len(page) < opt.Limit {
			break
		}
		opt.After = page[len(page)-1].ID
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Priority > out[j].Priority })
	return out, nil
}

func (s *Service) pool(ctx context.Context, ref string) (*lobby.Pool, error) {
	p, err := s.Store.GetPoolByName(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.Store.GetPool(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, lobby.Errorf(lobby.KindNotFound, "pool %q does not exist: `lobby pools list` shows the pools", ref)
	}
	if err != nil {
		return nil, fmt.Errorf("look up pool: %w", err)
	}
	return p, nil
}

// Connect gives u a desktop from the pool: the one they already hold there,
// or a free running one. Concurrent calls never hand one desktop to two
// people and never exceed the policy's desktop count.
func (s *Service) Connect(ctx context.Context, u *lobby.User, poolRef string) (*Grant, error) {
	return s.ConnectWith(ctx, u, poolRef, nil)
}

// ConnectWith is Connect that also runs also, when not nil, in the
// transaction that assigns the desktop, once it is chosen and if it is
// running (the API issues the console ticket there: one write transaction
// per connect). also is not run for a desktop that must first be started;
// an error from it undoes the assignment.
func (s *Service) ConnectWith(ctx context.Context, u *lobby.User, poolRef string, also func(tx store.Queries, g *Grant) error) (*Grant, error) {
	pool, pol, err := s.Resolve(ctx, u, poolRef)
	if err != nil {
		return nil, err
	}
	g := &Grant{Policy: pol}
	err = s.Store.InTx(ctx, func(tx store.Queries) error {
		if err := tx.LockUser(ctx, u.ID); err != nil {
			return err
		}
		held, err := tx.ListAssignments(ctx, store.AssignmentFilter{UserID: u.ID})
		if err != nil {
			return err
		}
		inPolicy := 0
		for i := range held {
			if held[i].PoolID == pool.ID {
				g.Assignment, g.Reused = &held[i], true
				if g.Desktop, err = tx.GetDesktop(ctx, held[i].DesktopID); err != nil {
					return err
				}
				return s.also(tx, g, also)
			}
			if s.policyCovers(pol, held[i].PoolID) {
				inPolicy++
			}
		}
		if inPolicy >= pol.MaxDesktops {
			return lobby.Errorf(lobby.KindConflict, "you already hold %d desktop(s), the most policy %q allows: release one first", inPolicy, pol.Name)
		}
		// Never connected yet counts as disconnected since now.
		now := s.Now()
		a := &lobby.Assignment{UserID: u.ID, PoolID: pool.ID, PolicyID: pol.ID, Mode: pol.Mode, Created: now, DisconnectedAt: &now}
		d, err := tx.AssignFree(ctx, a)
		if errors.Is(err, store.ErrExhausted) {
			return s.exhausted(ctx, tx, pool)
		}
		if err != nil {
			return err
		}
		g.Desktop, g.Assignment = d, a
		err = tx.AppendAudit(ctx, &lobby.AuditEvent{At: a.Created, Actor: u.Username, Action: "desktop.assign", Target: d.ID, Detail: fmt.Sprintf("desktop %s from pool %s by policy %s", d.Name, pool.Name, pol.Name)})
		if err != nil {
			return err
		}
		return s.also(tx, g, also)
	})
	if err != nil {
		return nil, err
	}
	if s.Kick != nil && !g.Reused {
		s.Kick(pool.ID)
	}
	if g.Desktop.Power != lobby.PowerRunning {
		if g.Desktop, err = s.bringUp(ctx, g.Desktop); err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (s *Service) also(tx store.Queries, g *Grant, also func(store.Queries, *Grant) error) error {
	if also == nil || g.Desktop.Power != lobby.PowerRunning {
		return nil
	}
	return also(tx, g)
}

func (s *Service) policyCovers(p *lobby.Policy, poolID string) bool {
	for _, id := range p.Pools {
		if id == poolID {
			return true
		}
	}
	return false
}

func (s *Service) exhausted(ctx context.Context, tx store.Queries, pool *lobby.Pool) error {
	c, err := tx.PoolCounts(ctx, pool.ID)
	if err != nil {
		return err
	}
	if s.Kick != nil {
		s.Kick(pool.ID)
	}
	if c.Total >= pool.MaxSize && c.Pending == 0 {
		return lobby.Errorf(lobby.KindConflict, "pool %q is exhausted: all %d desktops (its max size) are in use; try again later or ask an administrator to raise max_size", pool.Name, pool.MaxSize)
	}
	return lobby.Errorf(lobby.KindConflict, "pool %q has no free desktop right now (%d in use, %d starting): try again in a minute", pool.Name, c.Assigned, c.Pending)
}

// bringUp starts or resumes a held desktop and waits until it runs.
func (s *Service) bringUp(ctx context.Context, d *lobby.Desktop) (*lobby.Desktop, error) {
	op := "start"
	switch d.Power {
	case lobby.PowerSuspended:
		op = "resume"
	case lobby.PowerStarting, lobby.PowerCreating:
		op = "" // already on its way
	case lobby.PowerError, lobby.PowerDeleting:
		return nil, lobby.Errorf(lobby.KindUnavailable, "desktop %s is in state %s: ask an administrator", d.Name, d.Power)
	}
	if op != "" {
		if err := s.Store.SetDesktopPower(ctx, d.ID, lobby.PowerStarting, 0); err != nil {
			return nil, err
		}
		if _, err := s.Queue.Power(ctx, d.ID, op); err != nil {
			return nil, err
		}
	}
	timeout := s.StartTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cur, err := s.Store.GetDesktop(ctx, d.ID)
		if err != nil {
			return nil, err
		}
		switch cur.Power {
		case lobby.PowerRunning:
			return cur, nil
		case lobby.PowerError:
			return nil, lobby.Errorf(lobby.KindUnavailable, "desktop %s failed to start: see the job queue", d.Name)
		}
		select {
		case <-ctx.Done():
			return nil, lobby.Errorf(lobby.KindUnavailable, "desktop %s did not start within %s: try again, or see the job queue", d.Name, timeout)
		case <-tick.C:
		}
	}
}
