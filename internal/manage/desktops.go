package manage

import (
	"context"
	"errors"
	"fmt"

	"lobby/internal/jobs"
	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Actions are the power actions an operator can run on a desktop.
var Actions = []string{"start", "stop", "suspend", "resume", "restart", "delete"}

// transitional is the power state a desktop shows while an action runs.
var transitional = map[string]lobby.PowerState{
	"start": lobby.PowerStarting, "resume": lobby.PowerStarting, "restart": lobby.PowerStarting,
	"stop": lobby.PowerStopping, "suspend": lobby.PowerStopping, "delete": lobby.PowerDeleting,
}

// Desktop returns a desktop by ID.
func (s *Service) Desktop(ctx context.Context, id string) (*lobby.Desktop, error) {
	d, err := s.Store.GetDesktop(ctx, id)
	return d, StoreErr(err, fmt.Sprintf("desktop %q", id))
}

// DesktopAction enqueues a power action on a desktop and shows its
// transitional state at once. Deleting an assigned desktop ends its
// console sessions first.
func (s *Service) DesktopAction(ctx context.Context, a Actor, id, action string) (jobs.Job, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return jobs.Job{}, err
	}
	d, err := s.Desktop(ctx, id)
	if err != nil {
		return jobs.Job{}, err
	}
	next, ok := transitional[action]
	if !ok {
		return jobs.Job{}, lobby.FieldErrorf("action", "action %q is not valid: use start, stop, suspend, resume, restart, delete, assign or unassign", action)
	}
	if action == "delete" && d.AssignedTo != "" && s.Assign != nil && s.Assign.Sessions != nil {
		s.Assign.Sessions.End(d.ID)
	}
	job, err := s.Queue.Power(ctx, d.ID, action)
	if err != nil {
		return jobs.Job{}, err
	}
	if err := s.Store.SetDesktopPower(ctx, d.ID, next, d.ConsolePort); err != nil {
		return jobs.Job{}, StoreErr(err, "desktop "+d.Name)
	}
	return job, s.audit(ctx, s.Store, a, "desktop."+action, d.ID, fmt.Sprintf("%s %s (job %s)", action, d.Name, job.ID))
}

// AssignDesktop gives a desktop to a user by hand, as a persistent
// assignment outside any policy (an operator's decision).
func (s *Service) AssignDesktop(ctx context.Context, a Actor, desktopID, userRef string) (*lobby.Assignment, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return nil, err
	}
	d, err := s.Desktop(ctx, desktopID)
	if err != nil {
		return nil, err
	}
	u, err := s.User(ctx, userRef)
	if lobby.ErrorKind(err) == lobby.KindNotFound {
		return nil, lobby.FieldErrorf("user", "user %q does not exist", userRef)
	}
	if err != nil {
		return nil, err
	}
	as := &lobby.Assignment{DesktopID: d.ID, UserID: u.ID, PoolID: d.PoolID, Mode: lobby.Persistent, Created: s.now()}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.AssignDesktop(ctx, as); errors.Is(err, store.ErrConflict) {
			return lobby.Errorf(lobby.KindConflict, "desktop %s is already assigned: unassign it first", d.Name)
		} else if err != nil {
			return StoreErr(err, "desktop "+d.Name)
		}
		if err := q.SetConnected(ctx, as.ID, false, as.Created); err != nil {
			return err
		}
		return s.audit(ctx, q, a, "desktop.assign", d.ID, fmt.Sprintf("desktop %s assigned to %s by hand", d.Name, u.Username))
	})
	if err != nil {
		return nil, err
	}
	return as, nil
}

// UnassignDesktop ends a desktop's assignment at once: its sessions end and
// it goes back to its pool without any power action.
func (s *Service) UnassignDesktop(ctx context.Context, a Actor, desktopID string) error {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return err
	}
	d, err := s.Desktop(ctx, desktopID)
	if err != nil {
		return err
	}
	as, err := s.Store.ListAssignments(ctx, store.AssignmentFilter{DesktopID: d.ID})
	if err != nil {
		return err
	}
	if len(as) == 0 {
		return lobby.Errorf(lobby.KindConflict, "desktop %s is not assigned", d.Name)
	}
	if s.Assign != nil && s.Assign.Sessions != nil {
		s.Assign.Sessions.End(d.ID)
	}
	err = s.Store.InTx(ctx, func(q store.Queries) error {
		if err := q.DeleteAssignment(ctx, as[0].ID); err != nil {
			return StoreErr(err, "assignment of "+d.Name)
		}
		return s.audit(ctx, q, a, "desktop.unassign", d.ID, "desktop "+d.Name+" unassigned by hand")
	})
	if err == nil && d.PoolID != "" {
		s.kick(d.PoolID)
	}
	return err
}

// RetryJob runs a failed or cancelled job again.
func (s *Service) RetryJob(ctx context.Context, a Actor, id string) (jobs.Job, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return jobs.Job{}, err
	}
	j, err := s.Queue.Retry(ctx, id)
	if err != nil {
		return j, err
	}
	return j, s.audit(ctx, s.Store, a, "job.retry", id, "job "+id+" ("+j.Kind+")")
}

// CancelJob cancels a job that has not finished.
func (s *Service) CancelJob(ctx context.Context, a Actor, id string) (jobs.Job, error) {
	if err := Allow(a, lobby.PermOperate); err != nil {
		return jobs.Job{}, err
	}
	j, err := s.Queue.Cancel(ctx, id)
	if err != nil {
		return j, err
	}
	return j, s.audit(ctx, s.Store, a, "job.cancel", id, "job "+id+" ("+j.Kind+")")
}
