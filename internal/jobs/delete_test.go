package jobs_test

import (
	"errors"
	"testing"
	"time"

	"lobby/internal/lobby"
	"lobby/internal/store"
)

// TestDeleteWhileReleased: a desktop's delete job runs while the
// desktop's assignment is released. The desktop's record must go with
// the desktop. The job listed the assignments, then deleted each before
// the desktop: when a release deleted one first, the job's transaction
// ended with ErrNotFound, which the job took for "the desktop is gone",
// and the record stayed, in state deleting, forever (a host's report
// leaves that state to the job). The release here waits on a lock of
// the assignment (a session connecting) until the job's transaction
// reached it.
func TestDeleteWhileReleased(t *testing.T) {
	t.Parallel()
	for _, dialect := range []string{store.SQLite, store.Postgres} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			c := newCluster(t, dialect)
			c.node(1, "ins_a")
			q := c.queue(1, "ins_a", opts{reach: true, leader: on(true)})
			u := &lobby.User{Username: "alice", Role: lobby.RoleUser, Groups: []string{}}
			if err := c.st.CreateUser(ctx, u, "x"); err != nil {
				t.Fatal(err)
			}
			a := &lobby.Assignment{DesktopID: c.desktop.ID, UserID: u.ID, Mode: lobby.Persistent}
			if err := c.st.AssignDesktop(ctx, a); err != nil {
				t.Fatal(err)
			}

			// On SQLite, whose writer is one, the release simply runs
			// before or after the job's transaction.
			locked, release := make(chan struct{}), make(chan struct{})
			held := make(chan error, 1)
			go func() {
				held <- c.st.InTx(ctx, func(tx store.Queries) error {
					if dialect == store.Postgres {
						if err := tx.SetConnected(ctx, a.ID, true, time.Now()); err != nil {
							return err
						}
						close(locked)
						<-release
					}
					return tx.DeleteAssignment(ctx, a.ID)
				})
			}()
			if dialect == store.Postgres {
				<-locked
			}
			j, err := q.Power(ctx, c.desktop.ID, "delete")
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "the host deleted the desktop", func() bool {
				_, err := c.prov.Get(ctx, c.desktop.Name)
				return err != nil
			})
			time.Sleep(250 * time.Millisecond) // the job's transaction reaches the assignment
			close(release)
			if err := <-held; err != nil {
				t.Fatalf("release: %v", err)
			}
			eventually(t, "the job finished", func() bool { return job(t, q, j.ID).State == "completed" })
			if _, err := c.st.GetDesktop(ctx, c.desktop.ID); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the desktop's record after its delete job (%s): %v, want it gone", job(t, q, j.ID).Result, err)
			}
		})
	}
}
