package jobs

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
)

// db runs the few statements River has no API for (moving a job between
// sites, counting by state) on the store's own handle: a pgx pool or
// SQLite's writer. Each statement is given in both dialects.
type db struct {
	pg   *pgxpool.Pool
	lite *sql.DB
}

// rows is what pgx.Rows and *sql.Rows share.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// exec runs a statement (pgSQL for PostgreSQL, liteSQL for SQLite) and
// returns how many rows it changed.
func (d db) exec(ctx context.Context, pgSQL, liteSQL string, args ...any) (int64, error) {
	if d.pg != nil {
		tag, err := d.pg.Exec(ctx, pgSQL, args...)
		return tag.RowsAffected(), err
	}
	if d.lite == nil {
		return 0, errors.New("jobs: no database")
	}
	res, err := d.lite.ExecContext(ctx, liteSQL, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// query runs a query and calls scan for each row.
func (d db) query(ctx context.Context, pgSQL, liteSQL string, scan func(rows) error, args ...any) error {
	var rs rows
	if d.pg != nil {
		r, err := d.pg.Query(ctx, pgSQL, args...)
		if err != nil {
			return err
		}
		defer r.Close()
		rs = r
	} else {
		if d.lite == nil {
			return errors.New("jobs: no database")
		}
		r, err := d.lite.QueryContext(ctx, liteSQL, args...)
		if err != nil {
			return err
		}
		defer r.Close()
		rs = r
	}
	for rs.Next() {
		if err := scan(rs); err != nil {
			return err
		}
	}
	return rs.Err()
}
