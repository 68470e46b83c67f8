package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// demoMarker records that the demo was set up, so an operator who deletes
// the demo pool does not see it come back.
const demoMarker = "demo.created"

// ensureDemo creates, once per store, the pool "demo" of n desktops and a
// policy "demo" offering one of them to everyone, non-persistent, released
// on logoff and stopped (so the next person gets a fresh session).
func (s *Server) ensureDemo(ctx context.Context, n int) error {
	if _, err := s.Store.GetSetting(ctx, demoMarker); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	now := time.Now()
	pool := &lobby.Pool{Name: "demo", MinSize: n, MaxSize: n, MinFree: n, NamePattern: "demo-{n}", Template: "default", Created: now}
	if err := pool.Validate(); err != nil {
		return err
	}
	pol := &lobby.Policy{Name: "demo", Users: []string{"*"}, Groups: []string{}, MaxDesktops: 1, Mode: lobby.NonPersistent,
		Release: lobby.ReleasePlan{OnLogoff: true, DisconnectMinutes: 60}, PowerPlan: lobby.PowerStop, Created: now}
	return s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.CreatePool(ctx, pool); err != nil {
			return fmt.Errorf("create demo pool: %w", err)
		}
		pol.Pools = []string{pool.ID}
		if err := pol.Validate(); err != nil {
			return err
		}
		if err := q.CreatePolicy(ctx, pol); err != nil {
			return fmt.Errorf("create demo policy: %w", err)
		}
		if err := q.AppendAudit(ctx, &lobby.AuditEvent{At: now, Actor: "system", Action: "demo.create", Target: pool.ID, Detail: fmt.Sprintf("demo pool of %d desktops and policy for everyone", n)}); err != nil {
			return err
		}
		return q.SetSetting(ctx, demoMarker, now.UTC().Format(time.RFC3339))
	})
}
