// Package sqlite is the embedded store of a standalone node: store.Store on
// one SQLite file (modernc.org/sqlite, no cgo) in WAL mode, with one writer
// connection for every write and transaction and a read-only pool for
// plain reads. Its schema is migrated on Open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
)

// SchemaVersion is the highest migration version this binary knows.
const SchemaVersion = sqlstore.SchemaVersion

//go:embed migrations/*.sql
var migrations embed.FS

// BusyTimeoutMillis is how long a connection waits for a lock held by
// another process (another `lobby` command on the same file) before
// SQLITE_BUSY.
const BusyTimeoutMillis = 10000

// DB is a store.Store on a SQLite file.
type DB struct {
	*sqlstore.Store
	writer  *sql.DB
	reader  *sql.DB
	path    string
	ckpt    *checkpointer
	migrate sqlstore.MigrateConfig
}

// Options say how to open a database.
type Options struct {
	Logger *slog.Logger // nil: slog.Default()
	// NoMigrate leaves an older schema as it is (sqlstore.Check instead
	// of sqlstore.Migrate), for a node that runs in maintenance mode until
	// `lobby admin db migrate`, or for that command. The file must exist.
	NoMigrate bool
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path, and its
// directory, and migrates its schema to SchemaVersion (sqlstore.Migrate:
// a newer schema this binary may run on is left as it is). It returns an
// error wrapping store.ErrSchemaTooNew when a newer Lobby migrated the
// file beyond what this one may run on.
func Open(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	return OpenWith(ctx, path, Options{Logger: logger})
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, path string, opts Options) (*DB, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if strings.ContainsAny(path, "?#") || path == "" || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("open %q: give the path of a database file, without '?' or '#'", path)
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", path, err)
	}
	if opts.NoMigrate {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s without migrating: %w; start without --no-migrate to create it", path, err)
		}
	}
	if err := checkWritable(filepath.Dir(path)); err != nil {
		return nil, err
	}
	// The file holds password and token hashes: only we may read it (SQLite
	// gives the -wal and -shm files the database file's mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	db := &DB{path: path}
	if db.writer, err = openWriter(ctx, path); err != nil {
		return nil, err
	}
	db.migrate = sqlstore.MigrateConfig{
		Dialect:    store.SQLite,
		DB:         db.writer,
		Migrations: mustSub(migrations, "migrations"),
		River:      riverMigrations(logger),
		Logger:     logger,
	}
	if opts.NoMigrate {
		_, err = sqlstore.Check(ctx, db.migrate)
	} else {
		err = sqlstore.Migrate(ctx, db.migrate)
	}
	if err != nil {
		db.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.reader = openReader(path)
	if db.ckpt, err = startCheckpointer(ctx, path, logger); err != nil {
		db.Close()
		return nil, err
	}
	db.Store, err = sqlstore.New(sqlstore.Config{
		Dialect:  store.SQLite,
		Writer:   db.writer,
		Reader:   db.reader,
		Classify: classify,
		Logger:   logger,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkWritable creates dir if needed and checks that we can create files
// in it (SQLite needs the -wal and -shm files beside the database).
func checkWritable(dir string) error {
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".lobby-write-check-*"); err == nil {
			f.Close()
			err = os.Remove(f.Name())
		}
	}
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w; choose another with --data or fix its permissions", dir, err)
	}
	return nil
}

func dsn(path string, params ...string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMillis))
	for i := 0; i+1 < len(params); i += 2 {
		q.Add(params[i], params[i+1])
	}
	return path + "?" + q.Encode()
}

// openWriter opens the one writer connection: WAL, foreign keys, NORMAL
// sync (durable at checkpoints, never corrupt), and BEGIN IMMEDIATE so that
// a transaction takes the write lock first and never fails to upgrade.
// Temporary files in memory: the sub-journals of the savepoints that group
// transactions (sqlstore's group commit) and statement journals were
// written to temporary files, one pwrite per page changed twice in a
// group, 15% of the CPU of the assign benchmark.
func openWriter(ctx context.Context, path string) (*sql.DB, error) {
	w, err := sql.Open("sqlite", dsn(path,
		"_pragma", "journal_mode(WAL)",
		"_pragma", "synchronous(NORMAL)",
		"_pragma", "foreign_keys(1)",
		"_pragma", "temp_store(MEMORY)",
		"_pragma", "wal_autocheckpoint(0)", // see checkpointer
		"_txlock", "immediate"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return w, nil
}

// openReader opens the pool of read-only connections.
func openReader(path string) *sql.DB {
	r, _ := sql.Open("sqlite", dsn(path, "_pragma", "query_only(1)", "_pragma", "foreign_keys(1)"))
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return r
}

// Writer returns the writer connection, for River's riversqlite driver to
// share (so that jobs are inserted in our transactions). Do not change its
// settings.
func (db *DB) Writer() *sql.DB { return db.writer }

// MigrateConfig is what sqlstore.Migrate needs to migrate this database
// (`lobby admin db migrate`).
func (db *DB) MigrateConfig() sqlstore.MigrateConfig { return db.migrate }

// Path returns the absolute path of the database file.
func (db *DB) Path() string { return db.path }

// Close closes both pools.
func (db *DB) Close() error {
	var errs []error
	if db.ckpt != nil {
		errs = append(errs, db.ckpt.close())
	}
	if db.Store != nil {
		errs = append(errs, db.Store.Close())
	}
	if db.reader != nil {
		errs = append(errs, db.reader.Close())
	}
	// Keep the planner's statistics fresh, as SQLite advises on close.
	if _, err := db.writer.Exec("PRAGMA optimize"); err != nil {
		errs = append(errs, fmt.Errorf("optimize: %w", err))
	}
	errs = append(errs, db.writer.Close())
	return errors.Join(errs...)
}

func riverMigrations(logger *slog.Logger) []rivermigrate.Migration {
	m, err := rivermigrate.New(riversqlite.New(nil), &rivermigrate.Config{Logger: logger})
	if err != nil {
		panic(err) // the main line always exists
	}
	return m.AllVersions()
}

func classify(err error) sqlstore.Violation {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return sqlstore.NoViolation
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.UniqueViolation
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ForeignKeyViolation
	}
	return sqlstore.NoViolation
}

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err)
	}
	return sub
}
