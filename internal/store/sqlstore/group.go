package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

// groupCommitter runs the transactions of a SQLite store in groups. SQLite
// has one writer, so transactions run one after the other anyway; what
// they cost is mostly around them: taking the writer connection (a hand-off
// between goroutines that waits for the scheduler whenever the cores are
// busy), BEGIN and COMMIT, and the WAL frames of pages that every one of
// them touches (the free-desktop index, the audit log's last page). One
// goroutine takes the writer, runs every transaction waiting at that
// moment in a savepoint of one database transaction, and commits them
// together; each caller then learns its own outcome.
//
// Each transaction still sees the writes of those before it and none of
// those after, as if they ran one by one: a transaction that fails is
// rolled back to its savepoint and the others commit. A failed COMMIT
// fails them all. Statements inside a group ignore the callers' context
// cancellation (an interrupted write would roll back the whole group);
// a caller whose context ends before its turn is skipped.
type groupCommitter struct {
	db   *sql.DB
	s    *Store
	reqs chan *txReq // unbuffered: waiting senders queue in arrival order
	quit chan struct{}
	done chan struct{}
	// maxGroup bounds the transactions of one group, so that the first of
	// them does not wait on too many others.
	maxGroup int

	groups, txs atomic.Uint64 // database transactions, and transactions run in them
}

// Request states.
const (
	reqQueued int32 = iota
	reqRunning
	reqAbandoned
)

type txReq struct {
	ctx   context.Context
	fn    func(q *queries) error
	state atomic.Int32
	err   error
	panic any
	done  chan struct{}
}

// errStoreClosed is returned by transactions after Close.
var errStoreClosed = errors.New("store is closed")

const (
	savepointSQL = `SAVEPOINT lobby_tx`
	releaseSQL   = `RELEASE lobby_tx`
	rollbackSQL  = `ROLLBACK TO lobby_tx`
)

func newGroupCommitter(s *Store, db *sql.DB) *groupCommitter {
	c := &groupCommitter{db: db, s: s, reqs: make(chan *txReq), quit: make(chan struct{}), done: make(chan struct{}), maxGroup: 64}
	go c.run()
	return c
}

// do runs fn in a group and returns its outcome once the group committed.
func (c *groupCommitter) do(ctx context.Context, fn func(q *queries) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &txReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-c.quit:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		<-r.done // already running: its outcome is decided by the commit
	}
	if r.panic != nil {
		panic(r.panic)
	}
	return r.err
}

func (c *groupCommitter) close() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
}

func (c *groupCommitter) run() {
	defer close(c.done)
	var group []*txReq
	for {
		select {
		case r := <-c.reqs:
			group = append(group[:0], r)
		case <-c.quit:
			return
		}
	gather:
		for len(group) < c.maxGroup {
			select {
			case r := <-c.reqs:
				group = append(group, r)
			default:
				break gather
			}
		}
		c.runGroup(group)
		clear(group)
	}
}

// runGroup runs the transactions of one group in one database transaction.
func (c *groupCommitter) runGroup(group []*txReq) {
	live := make([]*txReq, 0, len(group))
	for _, r := range group {
		if !r.state.CompareAndSwap(reqQueued, reqRunning) {
			continue // its caller gave up waiting
		}
		if err := r.ctx.Err(); err != nil {
			finish(r, err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	c.groups.Add(1)
	c.txs.Add(uint64(len(live)))
	bg := context.Background()
	tx, err := c.db.BeginTx(bg, nil)
	if err != nil {
		finishAll(live, fmt.Errorf("begin transaction: %w", err))
		return
	}
	// Bumped before any caller learns its outcome (see noteAuthChange).
	changed := false
	ended := func() {
		if changed {
			c.s.d.authEpoch.Add(1)
		}
	}
	q := &queries{d: c.s.d, r: tx, w: tx, tx: tx, detached: true, authChanged: &changed}
	committed := 0
	for i, r := range live {
		if err := c.runOne(bg, q, r); err != nil {
			// The savepoint could not be ended: the transaction is in an
			// unknown state, so nothing of the group is kept.
			_ = tx.Rollback()
			ended()
			finishAll(live[:i+1], err)
			finishAll(live[i+1:], err)
			return
		}
		if r.err == nil && r.panic == nil {
			committed++
		}
	}
	if committed == 0 {
		err = tx.Rollback()
	} else {
		err = tx.Commit()
	}
	ended()
	for _, r := range live {
		if err != nil && r.err == nil && r.panic == nil {
			r.err = fmt.Errorf("commit: %w", err)
		}
		close(r.done)
	}
}

// runOne runs one transaction in a savepoint. It returns an error only
// when the savepoint cannot be set or ended.
func (c *groupCommitter) runOne(ctx context.Context, q *queries, r *txReq) error {
	if _, err := q.exec(ctx, savepointSQL); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	func() {
		defer func() { r.panic = recover() }()
		r.err = r.fn(q)
	}()
	if r.err != nil || r.panic != nil {
		if _, err := q.exec(ctx, rollbackSQL); err != nil {
			return fmt.Errorf("roll back: %w (after %v)", err, r.err)
		}
	}
	if _, err := q.exec(ctx, releaseSQL); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func finish(r *txReq, err error) {
	r.err = err
	close(r.done)
}

func finishAll(rs []*txReq, err error) {
	for _, r := range rs {
		r.err, r.panic = err, nil
		close(r.done)
	}
}
