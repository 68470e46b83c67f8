package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"lobby/internal/store"
)

// execer is what *sql.DB and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

// queries implements store.Queries on the Store (r and w are the reader and
// the writer) or inside a transaction (r and w are both the transaction).
type queries struct {
	d  *dialect
	r  execer
	w  execer
	tx *sql.Tx // nil outside a transaction
	// detached: the statements ignore the caller's cancellation (inside a
	// group of transactions, see groupCommitter).
	detached bool
	// authChanged is set, inside a transaction, when it changed tokens or
	// users (see Store.AuthEpoch).
	authChanged *bool
	// rerun, inside a transaction on PostgreSQL, is set by AssignFree
	// when it found no desktop it could lock without waiting. The
	// transaction may then hold locks on rows that failed its recheck
	// (FOR UPDATE keeps them), and waiting for other locks while holding
	// those can deadlock with another caller doing the same. So the
	// transaction is rolled back and run again with waitLocked, where
	// AssignFree waits for locked desktops, taking its row locks in ID
	// order only.
	rerun      *bool
	waitLocked bool
}

// noteAuthChange records a change that can invalidate an authenticated
// token: it bumps the epoch now outside a transaction, and once the
// transaction ends inside one (so that a cache filled from a read made
// before the commit is never taken for current).
func (q *queries) noteAuthChange() {
	if q.authChanged != nil {
		*q.authChanged = true
		return
	}
	q.d.authEpoch.Add(1)
}

// stmtCtx is the context for a statement: ctx without its cancellation
// when q is detached.
func (q *queries) stmtCtx(ctx context.Context) context.Context {
	if q.detached {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// atomic runs fn in the current transaction, or in a new one when q is not
// in a transaction.
func (q *queries) atomic(ctx context.Context, fn func(q *queries) error) error {
	if q.tx != nil {
		return fn(q)
	}
	return q.d.store.inTx(ctx, fn)
}

// execOne runs a write that must change one row and returns ErrNotFound,
// wrapped in what, when it changed none.
func (q *queries) execOne(ctx context.Context, what string, query string, args ...any) error {
	res, err := q.exec(ctx, query, args...)
	if err != nil {
		return q.d.wrap(err, what)
	}
	return oneRow(res, what)
}

// get reads one row from the reader; ErrNotFound, wrapped in what, when
// there is none.
func get[T any](ctx context.Context, q *queries, what string, scan func(scanner) (*T, error), query string, args ...any) (*T, error) {
	v, err := scan(q.readRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// list reads rows from the reader.
func list[T any](ctx context.Context, q *queries, what string, scan func(scanner) (*T, error), query string, args ...any) ([]T, error) {
	rows, err := q.readRows(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, *v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}

// page returns the paging arguments for opt.
func page(opt store.ListOptions) (after string, limit int) {
	return opt.After, clampLimit(opt.Limit)
}

// listLimit is list with a LIMIT clause for n rows appended to query. The
// two common page sizes are written into the text rather than bound: on
// SQLite a bound LIMIT is planned with its value, so binding it again
// expires the prepared statement and every run parsed the query anew
// (sqlite3Reprepare). Other sizes are bound, so the statement cache stays
// bounded.
func listLimit[T any](ctx context.Context, q *queries, what string, scan func(scanner) (*T, error), query string, n int, args ...any) ([]T, error) {
	if n == store.DefaultLimit || n == store.MaxLimit {
		return list(ctx, q, what, scan, query+" LIMIT "+strconv.Itoa(n), args...)
	}
	return list(ctx, q, what, scan, query+" LIMIT ?", append(args, n)...)
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return store.DefaultLimit
	case n > store.MaxLimit:
		return store.MaxLimit
	}
	return n
}

// dialect holds what differs between SQLite and PostgreSQL.
type dialect struct {
	name     string
	classify func(error) Violation
	now      func() time.Time
	store    *Store
	bound    sync.Map // query with ? → query with $n (PostgreSQL)
	// authEpoch counts the changes to tokens and users made through this
	// store (Store.AuthEpoch).
	authEpoch atomic.Uint64

	// Prepared statements, on SQLite only.
	writerStmts, readerStmts *stmtCache
}

func newDialect(s *Store) *dialect {
	return &dialect{name: s.cfg.Dialect, classify: s.cfg.Classify, now: s.cfg.Now, store: s}
}

func (d *dialect) postgres() bool { return d.name == store.Postgres }

// bind rewrites ? placeholders to $1, $2, ... on PostgreSQL. Our queries
// hold no ? inside string literals.
func (d *dialect) bind(query string) string {
	if !d.postgres() {
		return query
	}
	if v, ok := d.bound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	d.bound.Store(query, b.String())
	return b.String()
}

// pick returns the SQLite or the PostgreSQL variant of a fragment.
func (d *dialect) pick(sqlite, postgres string) string {
	if d.postgres() {
		return postgres
	}
	return sqlite
}

// wrap maps a unique violation to ErrConflict and anything else to itself,
// prefixed with what.
func (d *dialect) wrap(err error, what string) error {
	if d.classify(err) == UniqueViolation {
		return fmt.Errorf("%s: %w", what, store.ErrConflict)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// now returns the current time at the precision both databases keep.
func (q *queries) now() time.Time { return micro(q.d.now()) }

// micro truncates t to microseconds in UTC: PostgreSQL keeps microseconds,
// and SQLite stores them as well, so a time round-trips the same on both.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// t encodes a time for a query: NULL for the zero time, unix microseconds
// (INTEGER) on SQLite, timestamptz on PostgreSQL.
func (d *dialect) t(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if d.postgres() {
		return micro(t)
	}
	return t.UnixMicro()
}

// tPtr is t for an optional time: NULL for nil.
func (d *dialect) tPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.t(*t)
}

// microPtr is micro for an optional time.
func microPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	m := micro(*t)
	return &m
}

// timeCol scans what dialect.t wrote.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

// timePtrCol scans a nullable time into a *time.Time, nil for NULL.
type timePtrCol struct{ t **time.Time }

func (c timePtrCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// jsonText encodes v as JSON text; nil slices become [].
func jsonText(v any) string {
	if s, ok := v.([]string); ok && s == nil {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own plain types are encoded
	}
	return string(b)
}

// jsonCol scans JSON text (TEXT on SQLite, jsonb on PostgreSQL) into v.
type jsonCol struct{ v any }

func (c jsonCol) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	default:
		return fmt.Errorf("scan json: unexpected %T", src)
	}
	return json.Unmarshal(b, c.v)
}

// nullStr encodes "" as NULL, for optional references.
func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// strCol scans a nullable text column into a string, "" for NULL.
type strCol struct{ s *string }

func (c strCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.s = ""
	case string:
		*c.s = v
	case []byte:
		*c.s = string(v)
	default:
		return fmt.Errorf("scan text: unexpected %T", src)
	}
	return nil
}

// strings scans a JSON list of strings, never nil.
func stringsCol(v *[]string) jsonCol { return jsonCol{v} }

// likePattern makes a LIKE pattern matching s as a substring, escaping
// LIKE's wildcards with backslash.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// wrapRef is wrap for inserts and updates that reference other rows: a
// foreign key violation means the referenced row (described by ref) is
// missing, so it maps to ErrNotFound.
func (d *dialect) wrapRef(err error, what, ref string) error {
	if d.classify(err) == ForeignKeyViolation {
		return fmt.Errorf("%s: %s: %w", what, ref, store.ErrNotFound)
	}
	return d.wrap(err, what)
}

// noRows maps sql.ErrNoRows to ErrNotFound, prefixing what.
func noRows(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// oneRow returns ErrNotFound, prefixed with what, when res changed no row.
func oneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return nil
}
