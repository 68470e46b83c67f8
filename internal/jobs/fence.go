package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// metaAttempt is the metadata key of the token an attempt records when it
// finishes, "attempt@client": the trigger of migration 00013 drops a
// finish whose token is not the current attempt's of a running job.
const metaAttempt = "lobby_attempt"

// attemptToken is the token of a job row's current attempt, as the
// trigger computes it from the row.
func attemptToken(r *rivertype.JobRow) string {
	return fmt.Sprintf("%d@%s", r.Attempt, lastAttemptedBy(r))
}

// errFenced is what a job fetched in the instant of a fence returns.
var errFenced = errors.New("this node was fenced: another process holds its site ID")

// guard wraps every job: it records the attempt's token (so that a late
// finish of this attempt, once the job was taken over, is dropped), waits
// for an earlier attempt of the same job still running in this process
// (a takeover of a node thought dead that was only slow), and refuses to
// start work on a fenced node, putting the job back at once.
func (q *Queue) guard(ctx context.Context, row *rivertype.JobRow, doInner func(context.Context) error) error {
	if err := river.MetadataSet(ctx, metaAttempt, attemptToken(row)); err != nil {
		return err
	}
	if q.cfg.Fenced() {
		return river.JobSnooze(0)
	}
	release, err := q.runs.enter(ctx, row.ID)
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(q.fenceCtx, func() { cancel(errFenced) })
	defer stop()
	return doInner(ctx)
}

// fence stops this node's workers at once: running jobs are cancelled
// and nothing more is fetched. It runs when another process took the
// site ID over; only a restart brings the node back.
func (q *Queue) fence() {
	q.fenceOnce.Do(func() {
		q.fenceCancel()
		q.log.Error("another process holds this node's site ID: its workers stop now; restart this node")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.client.StopAndCancel(ctx); err != nil {
			q.log.Warn("stop the workers of a fenced node", "err", err)
		}
	})
}

// Fenced reports that this node's workers were stopped by a fence.
func (q *Queue) Fenced() bool { return q.fenceCtx.Err() != nil }

// runs are the jobs this process is running, by ID.
type runs struct {
	mu sync.Mutex
	by map[int64]chan struct{}
}

func newRuns() *runs { return &runs{by: map[int64]chan struct{}{}} }

// enter waits until no other attempt of the job runs in this process and
// marks this one running; release ends it.
func (r *runs) enter(ctx context.Context, id int64) (release func(), err error) {
	for {
		r.mu.Lock()
		ch, busy := r.by[id]
		if !busy {
			ch = make(chan struct{})
			r.by[id] = ch
			r.mu.Unlock()
			return func() {
				r.mu.Lock()
				delete(r.by, id)
				r.mu.Unlock()
				close(ch)
			}, nil
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
