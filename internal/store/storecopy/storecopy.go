// Package storecopy copies Lobby's data between its two databases, the
// embedded SQLite of a standalone node and the PostgreSQL of a cluster,
// in either direction: every table of the schema (River's jobs too) in
// dependency order inside one transaction of the target, converting each
// column between the dialects, with the sequences set after and the row
// counts checked before the commit. It also tells what a database holds
// and which rows of one are missing from the other, so that an operator's
// command can refuse before anything is lost.
package storecopy

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// DB is one end of a copy: a database/sql handle of its own on an already
// migrated database.
type DB struct {
	Dialect string // store.SQLite or store.Postgres
	SQL     *sql.DB
}

func (db DB) postgres() bool { return db.Dialect == store.Postgres }

// Close closes the handle.
func (db DB) Close() error { return db.SQL.Close() }

// OpenSQLite opens the SQLite file at path for a copy. It never creates
// the file: sqlite.Open makes and migrates it first.
func OpenSQLite(path string) (DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_txlock", "immediate")
	if _, err := os.Stat(path); err != nil {
		return DB{}, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return DB{}, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return DB{}, fmt.Errorf("open %s: %w", path, err)
	}
	return DB{Dialect: store.SQLite, SQL: db}, nil
}

// OpenPostgres connects to the database at dbURL for a copy.
func OpenPostgres(ctx context.Context, dbURL string) (DB, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return DB{}, fmt.Errorf("database URL: %w", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return DB{}, err
	}
	return DB{Dialect: store.Postgres, SQL: db}, nil
}

// TableRows is a number of rows of one table.
type TableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Summary writes counts as "users 3, pools 1, audit 12".
func Summary(counts []TableRows) string {
	var parts []string
	for _, c := range counts {
		parts = append(parts, fmt.Sprintf("%s %d", c.Table, c.Rows))
	}
	return strings.Join(parts, ", ")
}

// Info is what a database holds.
type Info struct {
	// Schema is the schema's version (0 when no Lobby migrated it) and
	// floor.
	store.Schema
	// Rows counts the rows of each table that has some, but the tables
	// that migrations write.
	Rows []TableRows
}

// Empty reports whether the database holds no data: it is new, or only
// migrated.
func (i *Info) Empty() bool { return len(i.Rows) == 0 }

// Inspect reads a database's schema version and what it holds, changing
// nothing.
func Inspect(ctx context.Context, db DB) (*Info, error) {
	schema, err := sqlstore.ReadSchema(ctx, db.SQL, db.Dialect)
	if err != nil {
		return nil, err
	}
	names, err := tableNames(ctx, db.SQL, db.postgres())
	if err != nil {
		return nil, err
	}
	info := &Info{Schema: schema}
	info.Rows, err = countRows(ctx, db.SQL, names)
	return info, err
}

// countRows counts the rows of the tables that have some, but the
// migrations' own.
func countRows(ctx context.Context, q queryer, tables []string) ([]TableRows, error) {
	var out []TableRows
	for _, t := range tables {
		if slices.Contains(migrationTables, t) {
			continue
		}
		var n int64
		if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+quote(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count the rows of %s: %w", t, err)
		}
		if n > 0 {
			out = append(out, TableRows{Table: t, Rows: n})
		}
	}
	return out, nil
}

// queryer is what *sql.DB and *sql.Tx share.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// pair returns the SQLite and PostgreSQL ends of a copy or comparison.
func pair(a, b DB) (lite, pg *sql.DB, err error) {
	switch {
	case a.Dialect == store.SQLite && b.Dialect == store.Postgres:
		return a.SQL, b.SQL, nil
	case a.Dialect == store.Postgres && b.Dialect == store.SQLite:
		return b.SQL, a.SQL, nil
	}
	return nil, nil, errors.New("storecopy: copies go between SQLite and PostgreSQL")
}
