package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"lobby/internal/store/sqlstore"
)

// Row is one row in flight: its values by column name, in the neutral
// form (string, int64, float64, bool, time.Time, []byte, nil).
type Row map[string]any

// Options adjust a copy.
type Options struct {
	// Transform, by table, changes each row on its way; an error aborts
	// the copy.
	Transform map[string]func(Row) error
}

// Report is what a copy did.
type Report struct {
	Version int64       // the schema version of both databases
	Tables  []TableRows // every table copied, in the order copied, with its rows
	Skipped []string    // the tables left out, each with the reason
}

// Total is the number of rows copied.
func (r *Report) Total() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Rows
	}
	return n
}

// NotEmptyError refuses a copy into a database that holds data.
type NotEmptyError struct{ Rows []TableRows }

func (e *NotEmptyError) Error() string {
	return "the target database is not empty: it holds " + Summary(e.Rows)
}

// batchParams bounds the parameters of one INSERT (SQLite allows 32766,
// PostgreSQL 65535).
const batchParams = 2000

// Copy copies every row of src into dst, which must be at the same schema
// version and hold no data (or the copy fails with *NotEmptyError). It is
// all or nothing: the rows are written in one transaction of dst, which
// holds its tables locked from the check to the commit, and the row count
// of each table is checked before the commit. src is read in one
// transaction too, so the copy is of one moment.
func Copy(ctx context.Context, src, dst DB, opt Options) (*Report, error) {
	lite, pg, err := pair(src, dst)
	if err != nil {
		return nil, err
	}
	sch, err := readSchema(ctx, lite, pg)
	if err != nil {
		return nil, err
	}
	tables, err := sch.copyable()
	if err != nil {
		return nil, err
	}
	srcTx, err := src.SQL.BeginTx(ctx, readOptions(src))
	if err != nil {
		return nil, fmt.Errorf("begin reading the source: %w", err)
	}
	defer srcTx.Rollback()
	dstTx, err := dst.SQL.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin writing the target: %w", err)
	}
	defer dstTx.Rollback()

	rep := &Report{}
	if rep.Version, err = sameVersion(ctx, srcTx, dstTx, src, dst); err != nil {
		return nil, err
	}
	if err := lockEmpty(ctx, dstTx, dst); err != nil {
		return nil, err
	}
	for _, t := range tables {
		n, err := copyTable(ctx, srcTx, dstTx, src.postgres(), dst.postgres(), t, opt.Transform[t.name])
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t.name, err)
		}
		rep.Tables = append(rep.Tables, TableRows{Table: t.name, Rows: n})
	}
	if dst.postgres() {
		if err := setSequences(ctx, dstTx, tables); err != nil {
			return nil, err
		}
	}
	if err := verify(ctx, dstTx, rep.Tables); err != nil {
		return nil, err
	}
	if err := dstTx.Commit(); err != nil {
		return nil, fmt.Errorf("commit the copy: %w", err)
	}
	for _, t := range sch.tables {
		if why, ok := notCopied[t.name]; ok && !slices.Contains(migrationTables, t.name) {
			rep.Skipped = append(rep.Skipped, t.name+" ("+why+")")
		}
	}
	return rep, nil
}

// readOptions reads PostgreSQL at one snapshot; SQLite's transaction
// (BEGIN IMMEDIATE) keeps writers out.
func readOptions(db DB) *sql.TxOptions {
	if db.postgres() {
		return &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return nil
}

func sameVersion(ctx context.Context, srcTx, dstTx queryer, src, dst DB) (int64, error) {
	sv, err := sqlstore.ReadSchema(ctx, srcTx, src.Dialect)
	if err != nil {
		return 0, err
	}
	dv, err := sqlstore.ReadSchema(ctx, dstTx, dst.Dialect)
	if err != nil {
		return 0, err
	}
	if sv.Version != dv.Version || sv.Version == 0 {
		return 0, fmt.Errorf("the source's schema version is %d and the target's %d: migrate both to the same version first", sv.Version, dv.Version)
	}
	return sv.Version, nil
}

// lockEmpty locks the target's tables against writers (on PostgreSQL;
// SQLite's transaction already holds its write lock) and checks that they
// hold nothing.
func lockEmpty(ctx context.Context, tx queryer, db DB) error {
	names, err := tableNames(ctx, tx, db.postgres())
	if err != nil {
		return err
	}
	if db.postgres() {
		quoted := make([]string, len(names))
		for i, n := range names {
			quoted[i] = quote(n)
		}
		if _, err := tx.ExecContext(ctx, "LOCK TABLE "+strings.Join(quoted, ", ")+" IN EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("lock the target's tables: %w", err)
		}
	}
	rows, err := countRows(ctx, tx, names)
	if err != nil {
		return err
	}
	if len(rows) > 0 {
		return &NotEmptyError{Rows: rows}
	}
	return nil
}

// copyTable copies t's rows in batches and returns how many it wrote.
func copyTable(ctx context.Context, srcTx, dstTx queryer, srcPG, dstPG bool, t *table, transform func(Row) error) (int64, error) {
	per := max(1, batchParams/len(t.cols))
	full := insertSQL(dstPG, t, per)
	var args []any
	var n int64
	flush := func() error {
		rows := len(args) / len(t.cols)
		if rows == 0 {
			return nil
		}
		q := full
		if rows < per {
			q = insertSQL(dstPG, t, rows)
		}
		if _, err := dstTx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
		n += int64(rows)
		args = args[:0]
		return nil
	}
	err := scan(ctx, srcTx, srcPG, t, t.cols, func(vals []any) error {
		if err := throughRow(t.cols, vals, transform); err != nil {
			return err
		}
		for i, c := range t.cols {
			args = append(args, encode(dstPG, c, vals[i]))
		}
		if len(args)/len(t.cols) == per {
			return flush()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, flush()
}

// throughRow passes the values of cols through fn as a Row, in place;
// a nil fn leaves them.
func throughRow(cols []column, vals []any, fn func(Row) error) error {
	if fn == nil {
		return nil
	}
	row := make(Row, len(cols))
	for i, c := range cols {
		row[c.name] = vals[i]
	}
	if err := fn(row); err != nil {
		return err
	}
	for i, c := range cols {
		vals[i] = row[c.name]
	}
	return nil
}

// scan reads cols of every row of t, in key order, in the neutral form.
func scan(ctx context.Context, q queryer, postgres bool, t *table, cols []column, fn func(vals []any) error) error {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = readExpr(postgres, c)
	}
	query := "SELECT " + strings.Join(exprs, ", ") + " FROM " + quote(t.name)
	if len(t.key) > 0 {
		keys := make([]string, len(t.key))
		for i, k := range t.key {
			keys[i] = quote(k)
		}
		query += " ORDER BY " + strings.Join(keys, ", ")
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	raw := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		vals := make([]any, len(cols))
		for i, c := range cols {
			v, err := decode(postgres, c, raw[i])
			if err != nil {
				return err
			}
			vals[i] = v
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// insertSQL is an INSERT of rows rows of t.
func insertSQL(postgres bool, t *table, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + quote(t.name) + " (")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(c.name))
	}
	b.WriteString(")")
	if postgres && t.hasIdentity() {
		b.WriteString(" OVERRIDING SYSTEM VALUE")
	}
	b.WriteString(" VALUES ")
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for i, c := range t.cols {
			if i > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(writeExpr(postgres, c, n))
		}
		b.WriteString(")")
	}
	return b.String()
}

// setSequences moves each PostgreSQL sequence past the highest value
// copied, so that the next row numbered by it does not collide.
func setSequences(ctx context.Context, tx queryer, tables []*table) error {
	for _, t := range tables {
		for _, c := range t.cols {
			if c.serial == "" {
				continue
			}
			q := "SELECT setval($1::regclass, COALESCE((SELECT max(" + quote(c.name) + ") FROM " + quote(t.name) + "), 0) + 1, false)"
			if _, err := tx.ExecContext(ctx, q, c.serial); err != nil {
				return fmt.Errorf("set the sequence of %s.%s: %w", t.name, c.name, err)
			}
		}
	}
	return nil
}

// verify checks that each table of the target holds the rows written.
func verify(ctx context.Context, tx queryer, copied []TableRows) error {
	var errs []error
	for _, c := range copied {
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(c.Table)).Scan(&n); err != nil {
			return fmt.Errorf("count the rows of %s: %w", c.Table, err)
		}
		if n != c.Rows {
			errs = append(errs, fmt.Errorf("%s holds %d rows after copying %d", c.Table, n, c.Rows))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the copy does not check out, nothing was written: %w", errors.Join(errs...))
	}
	return nil
}
