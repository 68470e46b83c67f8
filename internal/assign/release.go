package assign

import (
	"context"
	"errors"
	"fmt"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Logoff ends actor's session on a desktop and runs the release plan of
// the policy that gave it: the assignment ends when the plan releases on
// logoff, or when an operator logs off someone else. It reports whether
// the assignment ended.
func (s *Service) Logoff(ctx context.Context, actor *lobby.User, desktopID string) (bool, *lobby.Desktop, error) {
	d, err := s.Store.GetDesktop(ctx, desktopID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil, lobby.Errorf(lobby.KindNotFound, "desktop %q does not exist", desktopID)
	}
	if err != nil {
		return false, nil, err
	}
	as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{DesktopID: d.ID})
	if err != nil {
		return false, nil, err
	}
	if len(as) == 0 || (as[0].UserID != actor.ID && !actor.Role.Can(lobby.PermOperate)) {
		if !actor.Role.Can(lobby.PermRead) {
			// Do not tell a user whether someone else holds it.
			return false, nil, lobby.Errorf(lobby.KindForbidden, "desktop %q is not assigned to you", desktopID)
		}
		if len(as) == 0 {
			return false, d, nil
		}
		return false, nil, lobby.Errorf(lobby.KindForbidden, "desktop %s is assigned to someone else: releasing it needs the operator role", d.Name)
	}
	a := &as[0]
	if s.Sessions != nil {
		s.Sessions.End(d.ID)
	}
	pol := s.policyOf(ctx, a)
	if pol.Release.OnLogoff || a.UserID != actor.ID {
		if err := s.release(ctx, a, pol, actor.Username, "logoff"); err != nil {
			return false, nil, err
		}
		d, err = s.Store.GetDesktop(ctx, d.ID)
		return true, d, err
	}
	now := s.Now()
	if err := s.Store.SetConnected(ctx, a.ID, false, now); err != nil {
		return false, nil, err
	}
	err = s.Store.AppendAudit(ctx, &lobby.AuditEvent{At: now, Actor: actor.Username, Action: "desktop.logoff", Target: d.ID, Detail: "session ended; the assignment is kept by policy " + pol.Name})
	return false, d, err
}

// policyOf returns the policy of an assignment; when it was deleted, a
// plan that releases on logoff and keeps the desktop running.
func (s *Service) policyOf(ctx context.Context, a *lobby.Assignment) *lobby.Policy {
	pol, err := s.Store.GetPolicy(ctx, a.PolicyID)
	if err != nil {
		return &lobby.Policy{ID: a.PolicyID, Name: "(deleted)", Release: lobby.ReleasePlan{OnLogoff: true}, PowerPlan: lobby.PowerKeep}
	}
	return pol
}

// release ends an assignment and applies the policy's power plan.
func (s *Service) release(ctx context.Context, a *lobby.Assignment, pol *lobby.Policy, actor, reason string) error {
	err := s.Store.InTx(ctx, func(tx store.Queries) error {
		if err := tx.DeleteAssignment(ctx, a.ID); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, &lobby.AuditEvent{At: s.Now(), Actor: actor, Action: "desktop.release", Target: a.DesktopID,
			Detail: fmt.Sprintf("released (%s) by policy %s; power plan %s", reason, pol.Name, pol.PowerPlan)})
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // released concurrently
	}
	if err != nil {
		return fmt.Errorf("release assignment %s: %w", a.ID, err)
	}
	if s.Sessions != nil {
		s.Sessions.End(a.DesktopID)
	}
	switch pol.PowerPlan {
	case lobby.PowerStop, lobby.PowerSuspend:
		op := string(pol.PowerPlan)
		power := lobby.PowerStopping
		if err := s.Store.SetDesktopPower(ctx, a.DesktopID, power, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if _, err := s.Queue.Power(ctx, a.DesktopID, op); err != nil {
			return err
		}
		// One ready desktop fewer: the pool may have to start another.
		if s.Kick != nil {
			s.Kick(a.PoolID)
		}
	}
	// A desktop kept running comes back free: the pool needs nothing more.
	return nil
}

// ReleaseDue runs the timed parts of every policy's release plan at the
// service's clock: assignments disconnected longer than the plan allows,
// and assignments made before the plan's most recent time of day. It
// returns how many it released.
func (s *Service) ReleaseDue(ctx context.Context) (int, error) {
	now := s.Now()
	n := 0
	opt := store.ListOptions{Limit: store.MaxLimit}
	for {
		pols, err := s.Store.ListPolicies(ctx, opt)
		if err != nil {
			return n, err
		}
		for i := range pols {
			k, err := s.releaseDueFor(ctx, &pols[i], now)
			n += k
			if err != nil {
				return n, err
			}
		}
		if len(pols) < opt.Limit {
			return n, nil
		}
		opt.After = pols[len(pols)-1].ID
	}
}

func (s *Service) releaseDueFor(ctx context.Context, pol *lobby.Policy, now time.Time) (int, error) {
	plan := pol.Release
	if plan.DisconnectMinutes == 0 && plan.AtTime == "" {
		return 0, nil
	}
	as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{PolicyID: pol.ID})
	if err != nil {
		return 0, err
	}
	var cutoff time.Time // assignments made before this are released
	if plan.AtTime != "" {
		h, m, err := plan.ClockTime()
		if err != nil {
			return 0, err
		}
		cutoff = time.Date(now.Year(), now.Month(), now.Day(), h, m, 0, 0, now.Location())
		if cutoff.After(now) {
			cutoff = cutoff.AddDate(0, 0, -1)
		}
	}
	idle := time.Duration(plan.DisconnectMinutes) * time.Minute
	n := 0
	for i := range as {
		a := &as[i]
		reason := ""
		switch {
		case plan.DisconnectMinutes > 0 && !a.Connected && a.DisconnectedAt != nil && !now.Before(a.DisconnectedAt.Add(idle)):
			reason = fmt.Sprintf("disconnected for %d minutes", plan.DisconnectMinutes)
		case !cutoff.IsZero() && a.Created.Before(cutoff):
			reason = "daily release at " + plan.AtTime
		default:
			continue
		}
		if err := s.release(ctx, a, pol, "system", reason); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
