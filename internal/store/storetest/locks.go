package storetest

import (
	"errors"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// Lock order on PostgreSQL. Writers that meet on the same rows take their
// row locks in one order, so that none waits for a lock while holding one
// that the other waits for: a user before the user's assignments, an
// assignment before its desktop (as a release does), a desktop before the
// pool it is in (as AssignFree's foreign key checks do). The tests below
// each pair two writers that took them in opposite orders, with a third
// transaction holding a row lock that both run into, so that they meet
// halfway every time instead of once in many thousands of races; on
// PostgreSQL the old code ended in a deadlock (SQLSTATE 40P01) in each.

// settle is how long behind gives each writer to reach the lock it waits
// for. Were it too short under load, a test would pass without meeting
// the writers halfway, never fail wrongly.
const settle = 250 * time.Millisecond

// behind runs hold in a transaction, then each of ops in its own
// goroutine, settle apart, while the transaction stays open; it ends the
// transaction once the last has had time to block, and returns the ops'
// errors once all returned. On SQLite the ops simply wait for the writer.
func (f *fixture) behind(t *testing.T, hold func(q store.Queries) error, ops ...func() error) []error {
	t.Helper()
	locked, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- f.s.InTx(f.ctx, func(q store.Queries) error {
			if err := hold(q); err != nil {
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	select {
	case <-locked:
	case err := <-held:
		t.Fatalf("hold the lock: %v", err)
	}
	errs := make([]error, len(ops))
	done := make(chan int, len(ops))
	for i, op := range ops {
		go func() {
			errs[i] = op()
			done <- i
		}()
		time.Sleep(settle)
	}
	close(release)
	must(t, <-held)
	for range ops {
		<-done
	}
	return errs
}

// assigned returns a desktop of a new pool assigned to a new user, the
// assignment, and a console ticket of them.
func (f *fixture) assigned(t *testing.T) (*lobby.User, *lobby.Desktop, *lobby.Assignment, string) {
	t.Helper()
	h, p, u := f.host(t), f.pool(t), f.user(t, nil)
	d := f.desktop(t, h, p, lobby.PowerRunning)
	a := &lobby.Assignment{UserID: u.ID, PoolID: p.ID, Mode: lobby.NonPersistent}
	_, err := f.s.AssignFree(f.ctx, a)
	must(t, err)
	const hash = "ticket-hash"
	must(t, f.s.CreateTicket(f.ctx, &store.Ticket{Hash: hash, UserID: u.ID, DesktopID: d.ID, Expires: time.Now().Add(time.Hour)}))
	return u, d, a, hash
}

// redeem holds the ticket's row, as a console connecting does.
func (f *fixture) redeem(hash string) func(q store.Queries) error {
	return func(q store.Queries) error {
		_, err := q.RedeemTicket(f.ctx, hash, time.Now())
		return err
	}
}

// released fails unless err is nil or ErrNotFound (released by the other
// writer first): what a release accepts.
func released(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("release: %v", err)
	}
}

// testDeleteDesktopWhileReleased: a desktop is deleted (its host no
// longer has it) while its assignment is released. Deleting it took the
// desktop's row and then, by cascade, its tickets' and its assignment's;
// a release takes the assignment's and then the desktop's.
func testDeleteDesktopWhileReleased(t *testing.T, f *fixture) {
	_, d, a, hash := f.assigned(t)
	errs := f.behind(t, f.redeem(hash),
		func() error { return f.s.DeleteDesktop(f.ctx, d.ID) },
		func() error { return f.s.DeleteAssignment(f.ctx, a.ID) })
	must(t, errs[0])
	released(t, errs[1])
	_, err := f.s.GetDesktop(f.ctx, d.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetAssignment(f.ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
}

// testDeleteUserWhileReleased: a user is deleted while their assignment
// is released. Deleting them took the user's row, then by cascade their
// desktops' (freed), tickets' and assignments'; a release takes the
// assignment's and then the desktop's.
func testDeleteUserWhileReleased(t *testing.T, f *fixture) {
	u, d, a, hash := f.assigned(t)
	errs := f.behind(t, f.redeem(hash),
		func() error { return f.s.DeleteUser(f.ctx, u.ID) },
		func() error { return f.s.DeleteAssignment(f.ctx, a.ID) })
	must(t, errs[0])
	released(t, errs[1])
	_, err := f.s.GetUser(f.ctx, u.ID)
	wantErr(t, err, store.ErrNotFound)
	_, err = f.s.GetAssignment(f.ctx, a.ID)
	wantErr(t, err, store.ErrNotFound)
	got, err := f.s.GetDesktop(f.ctx, d.ID)
	must(t, err)
	same(t, "desktop of a deleted user: AssignedTo", got.AssignedTo, "")
}

// testDeletePoolWhileAssigning: a pool is deleted while one of its
// desktops is being assigned. The deletion must be refused (a desktop
// remains) and the assignment made. AssignFree locks the desktop and then
// checks its references, the pool among them (KEY SHARE); deleting the
// pool took the pool's row and then checked for desktops in it, waiting
// for the locked one. The user's row, locked by a connect of theirs,
// holds AssignFree between the two.
func testDeletePoolWhileAssigning(t *testing.T, f *fixture) {
	h, p, u := f.host(t), f.pool(t), f.user(t, nil)
	d := f.desktop(t, h, p, lobby.PowerRunning)
	a := &lobby.Assignment{UserID: u.ID, PoolID: p.ID, Mode: lobby.NonPersistent}
	errs := f.behind(t, func(q store.Queries) error { return q.LockUser(f.ctx, u.ID) },
		func() error { _, err := f.s.AssignFree(f.ctx, a); return err },
		func() error { return f.s.DeletePool(f.ctx, p.ID) })
	must(t, errs[0])
	wantErr(t, errs[1], store.ErrConflict)
	same(t, "desktop assigned", a.DesktopID, d.ID)
	_, err := f.s.GetPool(f.ctx, p.ID)
	must(t, err)
}
