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
// links; 00010_nodes.sql: the cluster's nodes and leases).
const SchemaVersion = 10

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
	Logger *slog.Logger
}

// Migrate brings the database to SchemaVersion. It refuses, with an error
// wrapping store.ErrSchemaTooNew, a database whose version is newer.
func Migrate(ctx context.Context, cfg MigrateConfig) error {
	return MigrateTo(ctx, cfg, SchemaVersion)
}

// MigrateTo migrates the database up or down to version target (0 undoes
// every migration), refusing a database newer than SchemaVersion like
// Migrate.
func MigrateTo(ctx context.Context, cfg MigrateConfig, target int64) error {
	p, err := newProvider(cfg)
	if err != nil {
		return err
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("the database's schema version is %d, newer than the %d this binary knows: a newer Lobby migrated it; upgrade this node to the same release: %w",
			current, SchemaVersion, store.ErrSchemaTooNew)
	}
	switch {
	case target > current:
		_, err = p.UpTo(ctx, target)
	case target < current:
		_, err = p.DownTo(ctx, target)
	}
	if err != nil {
		return fmt.Errorf("migrate schema from version %d to %d: %w", current, target, err)
	}
	return nil
}

func newProvider(cfg MigrateConfig) (*goose.Provider, error) {
	dialect := goose.DialectSQLite3
	if cfg.Dialect == store.Postgres {
		dialect = goose.DialectPostgres
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	steps, err := riverMigrations(cfg.Dialect, cfg.River)
	if err != nil {
		return nil, err
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(VersionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(steps...),
		goose.WithSlog(cfg.Logger),
	}
	if cfg.Locker != nil {
		opts = append(opts, goose.WithSessionLocker(cfg.Locker))
	}
	p, err := goose.NewProvider(dialect, cfg.DB, cfg.Migrations, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var last int64
	for _, s := range p.ListSources() {
		last = max(last, s.Version)
	}
	if last != SchemaVersion {
		return nil, fmt.Errorf("migrations: the %s migrations end at version %d but SchemaVersion is %d", cfg.Dialect, last, SchemaVersion)
	}
	return p, nil
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
