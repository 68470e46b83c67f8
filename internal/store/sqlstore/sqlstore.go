// Package sqlstore implements store.Store once, over database/sql, for both
// SQLite and PostgreSQL. The SQL is written with ? placeholders and rebound
// to $n for PostgreSQL; the few statements that truly differ (row locks,
// case-insensitive matching) are chosen by dialect. The sqlite and postgres
// packages open the connections, run Migrate and wrap a Store.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"lobby/internal/store"
)

// Violation is the constraint a driver error reports breaking.
type Violation int

// Violations, as told by Config.Classify.
const (
	NoViolation         Violation = iota
	UniqueViolation               // a unique or primary key constraint
	ForeignKeyViolation           // a reference to a missing row, or a delete of a referenced one
)

// Config says how to reach the database.
type Config struct {
	// Dialect is store.SQLite or store.Postgres.
	Dialect string
	// Writer runs every write and every transaction. On SQLite it has one
	// connection, which serializes writers.
	Writer *sql.DB
	// Reader runs plain reads outside transactions; nil means Writer.
	Reader *sql.DB
	// Classify tells which constraint, if any, a driver error broke.
	Classify func(error) Violation
	// Logger defaults to slog.Default(); Now to time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) validate() error {
	switch {
	case c.Dialect != store.SQLite && c.Dialect != store.Postgres:
		return fmt.Errorf("sqlstore: unknown dialect %q", c.Dialect)
	case c.Writer == nil:
		return errors.New("sqlstore: Writer is nil")
	case c.Classify == nil:
		return errors.New("sqlstore: Classify is nil")
	}
	if c.Reader == nil {
		c.Reader = c.Writer
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Store implements store.Store over database/sql. Close belongs to the
// dialect packages, which own the connections.
type Store struct {
	queries
	cfg   Config
	group *groupCommitter // SQLite only
}

// New returns a Store over already migrated connections.
func New(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg}
	s.queries = queries{d: newDialect(s), r: cfg.Reader, w: cfg.Writer}
	if cfg.Dialect == store.SQLite {
		s.d.writerStmts = newStmtCache(cfg.Writer)
		if cfg.Reader != cfg.Writer {
			s.d.readerStmts = newStmtCache(cfg.Reader)
		}
		for _, q := range hotSQLite() {
			if s.d.writerStmts.get(context.Background(), q) == nil {
				return nil, fmt.Errorf("sqlstore: cannot prepare %q", q)
			}
		}
		s.group = newGroupCommitter(s, cfg.Writer)
	}
	return s, nil
}

// Close releases the prepared statements. The connections belong to the
// caller, who closes them after.
func (s *Store) Close() error {
	if s.group != nil {
		s.group.close()
	}
	for _, c := range []*stmtCache{s.d.writerStmts, s.d.readerStmts} {
		if c != nil {
			c.close()
		}
	}
	return nil
}

// InTx runs fn in one transaction on the writer, committed when fn returns
// nil and rolled back otherwise. fn must use the Queries it is given: on
// SQLite, a write through the Store from inside fn waits forever for the
// writer that fn holds. On SQLite, concurrent transactions are committed
// in groups (see groupCommitter): fn's statements then ignore the
// cancellation of ctx, and InTx returns once the group is committed.
func (s *Store) InTx(ctx context.Context, fn func(q store.Queries) error) error {
	return s.inTx(ctx, func(q *queries) error { return fn(q) })
}

func (s *Store) inTx(ctx context.Context, fn func(q *queries) error) error {
	if s.group != nil {
		return s.group.do(ctx, fn)
	}
	return s.inOwnTx(ctx, fn)
}

// inOwnTx runs fn in a database transaction of its own. On PostgreSQL
// it runs fn a second time, in a new transaction, when AssignFree asks
// for it (see queries.rerun): fn's effects must all be in the
// transaction.
func (s *Store) inOwnTx(ctx context.Context, fn func(q *queries) error) error {
	for waitLocked := false; ; waitLocked = true {
		rerun := false
		err := s.txOnce(ctx, fn, waitLocked, &rerun)
		if !rerun || waitLocked {
			return err
		}
	}
}

// txOnce runs fn in a database transaction, committed when fn returns nil
// and nothing asked for a rerun.
func (s *Store) txOnce(ctx context.Context, fn func(q *queries) error, waitLocked bool, rerun *bool) (err error) {
	tx, err := s.cfg.Writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil || *rerun {
			_ = tx.Rollback()
		}
	}()
	changed := false
	defer func() {
		if changed {
			s.d.authEpoch.Add(1)
		}
	}()
	q := &queries{d: s.d, r: tx, w: tx, tx: tx, authChanged: &changed, waitLocked: waitLocked, rerun: rerun}
	if err = fn(q); err != nil || *rerun {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// AuthEpoch counts the changes made through this Store that can make an
// authenticated token invalid: token revocations, and changes to users
// (update, password, deletion). It moves once the change is committed.
// Changes made by other processes (other nodes of a cluster) are not
// counted.
func (s *Store) AuthEpoch() uint64 { return s.d.authEpoch.Load() }

var _ store.AuthEpocher = (*Store)(nil)

// GroupStats reports, on SQLite, how many database transactions the group
// committer ran and how many transactions (and single writes) they held;
// zeros on PostgreSQL.
func (s *Store) GroupStats() (groups, txs uint64) {
	if s.group == nil {
		return 0, 0
	}
	return s.group.groups.Load(), s.group.txs.Load()
}

// Dialect returns store.SQLite or store.Postgres.
func (s *Store) Dialect() string { return s.cfg.Dialect }

// SchemaVersion returns the highest migration version applied to the
// database.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	err := s.cfg.Reader.QueryRowContext(ctx, "SELECT max(version_id) FROM "+VersionTable).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v.Int64, nil
}

// Schema returns the schema's version and compatible floor (a node
// reads them at each heartbeat); version 0 when the database has no
// schema (opened without migrating).
func (s *Store) Schema(ctx context.Context) (store.Schema, error) {
	return ReadSchema(ctx, s.cfg.Reader, s.cfg.Dialect)
}

// Ping checks that the database answers, through the writer (and the
// reader, when there is one of its own).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.cfg.Writer.PingContext(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	if s.cfg.Reader != s.cfg.Writer {
		if err := s.cfg.Reader.PingContext(ctx); err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
	return nil
}

var _ store.Queries = (*queries)(nil)
