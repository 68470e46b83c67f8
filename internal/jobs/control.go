package jobs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"lobby/internal/lobby"
)

// Retry makes a failed, cancelled or scheduled job run again now.
func (q *Queue) Retry(ctx context.Context, id string) (Job, error) {
	return q.control(ctx, id, "retry", q.client.JobRetry)
}

// Cancel stops a job that has not finished. A running job's context is
// cancelled; a job already finished is left as it is.
func (q *Queue) Cancel(ctx context.Context, id string) (Job, error) {
	return q.control(ctx, id, "cancel", q.client.JobCancel)
}

func (q *Queue) control(ctx context.Context, id, verb string, op func(context.Context, int64) (*rivertype.JobRow, error)) (Job, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return Job{}, lobby.Errorf(lobby.KindNotFound, "job %q does not exist", id)
	}
	r, err := op(ctx, n)
	if errors.Is(err, river.ErrNotFound) {
		return Job{}, lobby.Errorf(lobby.KindNotFound, "job %q does not exist", id)
	}
	if err != nil {
		return Job{}, fmt.Errorf("%s job %s: %w", verb, id, err)
	}
	return jobFromRow(r), nil
}

// Counts returns how many jobs are in each state (every state present,
// zero when none).
func (q *Queue) Counts(ctx context.Context) (map[string]int, error) {
	out := make(map[string]int, len(rivertype.JobStates()))
	for _, st := range rivertype.JobStates() {
		out[string(st)] = 0
	}
	rows, err := q.countRows(ctx)
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	for st, n := range rows {
		out[st] = n
	}
	return out, nil
}

const countSQL = `SELECT state, count(*) FROM river_job GROUP BY state`

func (q *Queue) countRows(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	err := q.db.query(ctx, countSQL, countSQL, func(r rows) error {
		var st string
		var n int
		if err := r.Scan(&st, &n); err != nil {
			return err
		}
		out[st] = n
		return nil
	})
	return out, err
}
