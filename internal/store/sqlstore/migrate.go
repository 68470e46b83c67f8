package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/rivermigrate"

	"lobby/internal/store"
)

// SchemaVersion is the highest migration version this binary knows. Both
// dialects number their migrations alike: the same version is the same
// logical schema. Versions 2 to 8 are River's (riverSteps), so Lobby's own
// SQL migrations go on from 00009 (00009_links.sql: join tokens and host
// links; 00010_nodes.sql: the cluster's nodes and leases;
// 00011_node_health.sql: what each node records of its own health; 00012:
// the compatible floor, see compat.go; 00013_job_fence.sql: the trigger
// that drops late job completions; 00014: hosts' renewed certificates).
// A test build (-tags lobby_nextrelease or lobby_contractrelease) adds
// testMigrations beyond it.
const SchemaVersion = max(releaseSchemaVersion, testReleaseVersion)

// releaseSchemaVersion is the version of the last migration in the
// dialects' migrations directories: raise it with each new migration
// (merging parallel migrations: keep the highest).
const releaseSchemaVersion = 14

// VersionTable is the goose version table of Lobby's schema.
const VersionTable = "lobby_schema_version"

// riverStep is one of our migrations that applies one migration of River's
// "main" line, so that Lobby's schema and River's have one version.
type riverStep struct {
	Version int64 // ours
	River   int   // River's
}

// riverSteps lists every River migration of the River version in go.mod.
// When an upgrade of River brings a new migration, Migrate fails until a
// step for it is added here (with a new SchemaVersion).
var riverSteps = []riverStep{
	{2, 1}, {3, 2}, {4, 3}, {5, 4}, {6, 5}, {7, 6}, {8, 7},
}

// MigrateConfig says what to migrate.
type MigrateConfig struct {
	Dialect string // store.SQLite or store.Postgres
	DB      *sql.DB
	// Migrations holds the dialect's SQL migrations (NNNNN_name.sql) at
	// its root.
	Migrations fs.FS
	// River is River's "main" migration line for the dialect:
	// rivermigrate.New(driver, nil).AllVersions().
	River []rivermigrate.Migration
	// Locker keeps two nodes from migrating at once; nil for none.
	Locker lock.SessionLocker
	Logger *slog.Logger // nil: slog.Default()

	extra []testMigration // tests' own migrations beyond SchemaVersion
}

// tests are the test migrations beyond the release's.
func (c MigrateConfig) tests() []testMigration {
	return append(slices.Clip(testMigrations), c.extra...)
}

// known is the highest schema version this binary (and test) knows.
func (c MigrateConfig) known() int64 {
	v := int64(SchemaVersion)
	for _, m := range c.extra {
		v = max(v, m.Version)
	}
	return v
}

// Migrate brings the database to SchemaVersion, holding cfg.Locker so
// that nodes starting together migrate one after the other. A database
// already newer is left as it is when this binary may still run on it
// (its floor is at most SchemaVersion: a rolling upgrade, where release N
// keeps serving while N+1 migrates); one whose floor is above is refused
// with an error wrapping store.ErrSchemaTooNew.
func Migrate(ctx context.Context, cfg MigrateConfig) error {
	return MigrateTo(ctx, cfg, cfg.known())
}

// MigrateTo migrates the database up or down to version target (0 undoes
// every migration), refusing or leaving a newer database like Migrate.
// Before a contract migration it raises the floor, so that older nodes
// stop serving (maintenance mode) rather than run on a schema their code
// does not know; after migrating, the floor is that of the version
// reached.
func MigrateTo(ctx context.Context, cfg MigrateConfig, target int64) (err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p, steps, err := newProvider(cfg)
	if err != nil {
		return err
	}
	unlock, err := lockSchema(ctx, cfg)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := ReadSchema(ctx, cfg.DB, cfg.Dialect)
	if err != nil {
		return err
	}
	switch cur.State(cfg.known()) {
	case store.SchemaIncompatible:
		return cur.TooNew(cfg.known())
	case store.SchemaAhead:
		cfg.Logger.Info("the database's schema is newer than this binary's but compatible with it: a rolling upgrade is under way; leaving it as it is",
			"database", cur.Version, "floor", cur.Floor, "binary", cfg.known())
		return nil
	}
	if target == cur.Version {
		return nil
	}
	defer func() {
		// Whatever version was reached, the floor is that version's.
		if ferr := settleFloor(ctx, cfg, steps); ferr != nil && err == nil {
			err = ferr
		}
	}()
	if target < cur.Version {
		if _, err := p.DownTo(ctx, target); err != nil {
			return fmt.Errorf("migrate schema from version %d down to %d: %w", cur.Version, target, err)
		}
		return nil
	}
	for _, s := range steps {
		if s.Floor == 0 || s.Version <= cur.Version || s.Version > target {
			continue
		}
		if err := upTo(ctx, p, cur.Version, s.Version-1); err != nil {
			return err
		}
		if err := raiseFloor(ctx, cfg, s); err != nil {
			return err
		}
	}
	return upTo(ctx, p, cur.Version, target)
}

func upTo(ctx context.Context, p *goose.Provider, from, to int64) error {
	if _, err := p.UpTo(ctx, to); err != nil {
		return fmt.Errorf("migrate schema from version %d to %d: %w", from, to, err)
	}
	return nil
}

// lockSchema takes cfg.Locker's lock for the whole migration (goose's
// own would be taken and given back around each of its calls).
func lockSchema(ctx context.Context, cfg MigrateConfig) (unlock func(), err error) {
	if cfg.Locker == nil {
		return func() {}, nil
	}
	conn, err := cfg.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock schema for migration: %w", err)
	}
	if err := cfg.Locker.SessionLock(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		if err := cfg.Locker.SessionUnlock(context.WithoutCancel(ctx), conn); err != nil {
			cfg.Logger.Warn("unlock schema after migration", "err", err)
		}
		conn.Close()
	}, nil
}

// newProvider makes the goose provider of the dialect's migrations and
// River's, and lists every step with its floor (compat.go).
func newProvider(cfg MigrateConfig) (*goose.Provider, []Step, error) {
	dialect := goose.DialectSQLite3
	if cfg.Dialect == store.Postgres {
		dialect = goose.DialectPostgres
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	rivers, err := riverMigrations(cfg.Dialect, cfg.River)
	if err != nil {
		return nil, nil, err
	}
	p, err := goose.NewProvider(dialect, cfg.DB, cfg.Migrations,
		goose.WithTableName(VersionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(append(rivers, testGoMigrations(cfg.tests())...)...),
		goose.WithSlog(cfg.Logger))
	if err != nil {
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	steps, err := listSteps(cfg.Migrations, p.ListSources(), cfg.tests())
	if err != nil {
		return nil, nil, err
	}
	if last := steps[len(steps)-1].Version; last != cfg.known() {
		return nil, nil, fmt.Errorf("migrations: the %s migrations end at version %d but SchemaVersion is %d", cfg.Dialect, last, cfg.known())
	}
	return p, steps, nil
}

// riverMigrations turns River's migrations into our Go migrations, each
// recording itself in river_migration the way River's own migrator does,
// so that rivermigrate reports them as applied.
func riverMigrations(dialect string, river []rivermigrate.Migration) ([]*goose.Migration, error) {
	byVersion := map[int]rivermigrate.Migration{}
	for _, m := range river {
		byVersion[m.Version] = m
		if !slices.ContainsFunc(riverSteps, func(s riverStep) bool { return s.River == m.Version }) {
			return nil, fmt.Errorf("migrations: River migration %d (%s) has no step in sqlstore.riverSteps: add one", m.Version, m.Name)
		}
	}
	var out []*goose.Migration
	for _, s := range riverSteps {
		m, ok := byVersion[s.River]
		if !ok {
			return nil, fmt.Errorf("migrations: River has no migration %d (step %d)", s.River, s.Version)
		}
		out = append(out, goose.NewGoMigration(s.Version,
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
				return riverUp(ctx, tx, dialect, m)
			}},
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
				return riverDown(ctx, tx, dialect, m)
			}}))
	}
	return out, nil
}

// River's migration 5 added river_migration.line; before it, rows have a
// version only (rivermigrate's migrateVersionLineColumnAdded).
const riverLineColumnAdded = 5

// riverSchemaTemplate marks where River's migrations may name a schema. We
// remove it, as River's migrator does when no schema is configured, so that
// the tables land in the first schema of the search_path (our own
// migrations' schema). Left in place it is a comment, except inside
// to_regclass('...') in migration 5, where it breaks the name.
const riverSchemaTemplate = "/* TEMPLATE: schema */"

func riverSQL(sql string) string { return strings.ReplaceAll(sql, riverSchemaTemplate, "") }

func riverUp(ctx context.Context, tx *sql.Tx, dialect string, m rivermigrate.Migration) error {
	if _, err := tx.ExecContext(ctx, riverSQL(m.SQLUp)); err != nil {
		return fmt.Errorf("river migration %d (%s): %w", m.Version, m.Name, err)
	}
	record := `INSERT INTO river_migration (line, version) VALUES ('main', ?)`
	if m.Version < riverLineColumnAdded {
		record = `INSERT INTO river_migration (version) VALUES (?)`
	}
	if _, err := tx.ExecContext(ctx, bindFor(dialect, record), m.Version); err != nil {
		return fmt.Errorf("record river migration %d: %w", m.Version, err)
	}
	return nil
}

func riverDown(ctx context.Context, tx *sql.Tx, dialect string, m rivermigrate.Migration) error {
	if _, err := tx.ExecContext(ctx, riverSQL(m.SQLDown)); err != nil {
		return fmt.Errorf("river migration %d (%s) down: %w", m.Version, m.Name, err)
	}
	if m.Version == 1 { // it dropped river_migration
		return nil
	}
	record := `DELETE FROM river_migration WHERE line = 'main' AND version = ?`
	if m.Version <= riverLineColumnAdded {
		record = `DELETE FROM river_migration WHERE version = ?`
	}
	if _, err := tx.ExecContext(ctx, bindFor(dialect, record), m.Version); err != nil {
		return fmt.Errorf("unrecord river migration %d: %w", m.Version, err)
	}
	return nil
}

func bindFor(name, query string) string {
	return (&dialect{name: name}).bind(query)
}
