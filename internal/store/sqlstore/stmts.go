package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps prepared statements of one *sql.DB on SQLite, where
// parsing a statement costs about a quarter of a short write (the modernc
// driver caches none). PostgreSQL needs no cache: pgx keeps prepared
// statements per connection. Queries are our own constant texts, so the
// cache is bounded.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// lookup returns the statement if it is prepared, without preparing it.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// get returns the statement, preparing it on first use; nil when it cannot
// be prepared (the caller then runs the query unprepared and sees the
// error). It takes a connection of c.db to prepare, so it must not be
// called while holding the only writer connection (inside a transaction).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	if st := c.lookup(query); st != nil {
		return st
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.m[query]; ok {
		st.Close()
		return prev
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		st.Close()
		delete(c.m, q)
	}
}

// writeRow runs a statement that returns a row on the writer, prepared
// when it can be.
func (q *queries) writeRow(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = q.stmtCtx(ctx)
	query = q.d.bind(query)
	if st := q.writerStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.w.QueryRowContext(ctx, query, args...)
}

// writeScan runs a statement that returns a row on the writer and scans
// it; outside a transaction on SQLite, as a transaction of the group
// committer (see exec).
func (q *queries) writeScan(ctx context.Context, scan func(*sql.Row) error, query string, args ...any) error {
	if g := q.group(); g != nil {
		q.prepareForGroup(ctx, query)
		return g.do(ctx, func(tq *queries) error { return scan(tq.writeRow(ctx, query, args...)) })
	}
	return scan(q.writeRow(ctx, query, args...))
}

// group returns the group committer when q is a SQLite store outside a
// transaction: its single writes go through the committer too, so that
// every writer waits in one first-come, first-served queue (database/sql
// hands a released connection to a random waiter: sign-ins waited up to
// 3 times the median for the writer in the login storm) and is committed
// with the others.
func (q *queries) group() *groupCommitter {
	if q.tx != nil {
		return nil
	}
	return q.d.store.group
}

// prepareForGroup prepares query on the writer, once, before it is run in
// a group (whose transaction holds the writer, on which nothing can be
// prepared then).
func (q *queries) prepareForGroup(ctx context.Context, query string) {
	q.d.writerStmts.get(ctx, q.d.bind(query))
}

// exec runs a write on the writer, prepared when it can be.
func (q *queries) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if g := q.group(); g != nil {
		q.prepareForGroup(ctx, query)
		var res sql.Result
		err := g.do(ctx, func(tq *queries) (err error) {
			res, err = tq.exec(ctx, query, args...)
			return err
		})
		return res, err
	}
	ctx = q.stmtCtx(ctx)
	query = q.d.bind(query)
	if st := q.writerStmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.w.ExecContext(ctx, query, args...)
}

// readRow and readRows run a read on the reader (the transaction inside
// one), prepared when they can be.
func (q *queries) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = q.stmtCtx(ctx)
	query = q.d.bind(query)
	if st := q.readerStmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.r.QueryRowContext(ctx, query, args...)
}

func (q *queries) readRows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = q.stmtCtx(ctx)
	query = q.d.bind(query)
	if st := q.readerStmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.r.QueryContext(ctx, query, args...)
}

// writerStmt returns the prepared statement for the writer, bound to the
// transaction inside one; nil on PostgreSQL. Inside a transaction it only
// uses statements prepared before (New prepares the hot ones), since
// preparing needs the writer connection the transaction holds.
func (q *queries) writerStmt(ctx context.Context, query string) *sql.Stmt {
	c := q.d.writerStmts
	if c == nil {
		return nil
	}
	if q.tx == nil {
		return c.get(ctx, query)
	}
	if st := c.lookup(query); st != nil {
		return q.tx.StmtContext(ctx, st)
	}
	return nil
}

// readerStmt returns the prepared statement for the reader pool; inside a
// transaction, the writer's if prepared. Nil on PostgreSQL.
func (q *queries) readerStmt(ctx context.Context, query string) *sql.Stmt {
	if q.tx != nil {
		return q.writerStmt(ctx, query)
	}
	if c := q.d.readerStmts; c != nil {
		return c.get(ctx, query)
	}
	return nil
}
