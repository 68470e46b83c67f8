// Package postgres is the store of a cluster: store.Store on PostgreSQL
// through pgx (a pgxpool shared with River's riverpgxv5 driver, and
// database/sql over it for the shared implementation). Its schema is
// migrated on Open, one node at a time.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// SchemaVersion is the highest migration version this binary knows.
const SchemaVersion = sqlstore.SchemaVersion

//go:embed migrations/*.sql
var migrations embed.FS

// ConnectTimeout bounds the first connection when ctx has no deadline.
const ConnectTimeout = 15 * time.Second

// DB is a store.Store on PostgreSQL.
type DB struct {
	*sqlstore.Store
	pool    *pgxpool.Pool
	sqldb   *sql.DB
	migrate sqlstore.MigrateConfig
}

// Options say how to open a database.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// NoMigrate leaves an older schema as it is (sqlstore.Check instead
	// of sqlstore.Migrate), for a node that runs in maintenance mode until
	// `lobby admin db migrate`, or for that command.
	NoMigrate bool
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (postgres://user:password@host:port/db?...,
// or key=value form; pgxpool parameters such as pool_max_conns apply, the
// pool size defaulting to DefaultMaxConns) and
// migrates its schema to SchemaVersion, holding an advisory lock so that
// nodes starting together migrate one at a time. The schema is the first
// of the connection's search_path. A newer schema this binary may run on
// is left as it is (a rolling upgrade, see sqlstore.Migrate); it returns
// an error wrapping store.ErrSchemaTooNew when a newer Lobby migrated the
// database beyond what this one may run on.
func Open(ctx context.Context, url string, logger *slog.Logger) (*DB, error) {
	return OpenWith(ctx, url, Options{Logger: logger})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, url string, opts Options) (*DB, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's error hides the password.
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns()
	}
	pool, where, err := connect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool, sqldb: stdlib.OpenDBFromPool(pool)}
	db.migrate = sqlstore.MigrateConfig{
		Dialect:    store.Postgres,
		DB:         db.sqldb,
		Migrations: mustSub(migrations, "migrations"),
		River:      riverMigrations(logger),
		Locker:     schemaLocker{},
		Logger:     logger,
	}
	if opts.NoMigrate {
		_, err = sqlstore.Check(ctx, db.migrate)
	} else {
		err = sqlstore.Migrate(ctx, db.migrate)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", where, err)
	}
	db.Store, err = sqlstore.New(sqlstore.Config{
		Dialect:  store.Postgres,
		Writer:   db.sqldb,
		Classify: classify,
		Logger:   logger,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// DefaultMaxConns is the pool size when the URL sets no pool_max_conns:
// 4 per CPU, at least 16. pgxpool's own default (4 on a small machine)
// leaves requests queueing for a connection while others wait on the
// network, and River holds one connection for LISTEN; 16 connections
// gave about 1.5 times the assignments/s of 4 on 2 CPUs (BenchmarkAssignFree).
func DefaultMaxConns() int32 {
	return int32(max(16, 4*runtime.GOMAXPROCS(0)))
}

// connect opens a pool on cfg and checks that the server answers (within
// ConnectTimeout unless ctx has a deadline). It also returns the
// database's name for messages (Describe).
func connect(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, string, error) {
	where := Describe(cfg.ConnConfig.Config)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, where, fmt.Errorf("open %s: %w", where, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ConnectTimeout)
		defer cancel()
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, where, fmt.Errorf("cannot reach PostgreSQL at %s: %w; check that the server is running and accepts connections from this host, and the user, password and database name in the URL", where, err)
	}
	return pool, where, nil
}

// Describe names a database without its password, for messages:
// postgres://user@host:port/database.
func Describe(c pgconn.Config) string {
	return fmt.Sprintf("postgres://%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

// MigrateConfig is what sqlstore.Migrate needs to migrate this database
// (`lobby admin db migrate`).
func (db *DB) MigrateConfig() sqlstore.MigrateConfig { return db.migrate }

// Pool returns the connection pool, for River's riverpgxv5 driver to share.
func (db *DB) Pool() *pgxpool.Pool { return db.pool }

// Close closes the database/sql handle and the pool.
func (db *DB) Close() error {
	if db.Store != nil {
		db.Store.Close()
	}
	err := db.sqldb.Close()
	db.pool.Close()
	return err
}

func riverMigrations(logger *slog.Logger) []rivermigrate.Migration {
	m, err := rivermigrate.New(riverpgxv5.New(nil), &rivermigrate.Config{Logger: logger})
	if err != nil {
		panic(err) // the main line always exists
	}
	return m.AllVersions()
}

// PostgreSQL error codes (Appendix A of its manual).
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

func classify(err error) sqlstore.Violation {
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code {
	case codeUniqueViolation:
		return sqlstore.UniqueViolation
	case codeForeignKeyViolation:
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}

// schemaLocker holds a session advisory lock per schema while migrating,
// so that nodes starting together migrate one after the other (and tests
// in separate schemas of one database do not wait for each other). It
// blocks in pg_advisory_lock instead of polling.
type schemaLocker struct{}

const lockKey = `hashtext('lobby.migrate.' || current_schema())`

func (schemaLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("lock schema for migration: %w", err)
	}
	return nil
}

func (schemaLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("unlock schema after migration: %w", err)
	}
	return nil
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
