package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"

	"github.com/pressly/goose/v3"

	"lobby/internal/store"
)

// Expand and contract. Every migration is an expand migration unless it
// says otherwise: it only adds (tables, nullable or defaulted columns,
// indexes), so the code of earlier releases keeps working on the result.
// A migration that removes or changes what earlier code uses is a
// contract migration, and says from which schema version on the code no
// longer uses it, on a line of its own:
//
//	-- lobby:contract floor=N
//
// Before it runs, MigrateTo raises the database's floor (the one row of
// schema_compat, migration 00012) to N: nodes whose binary knows less than
// N see it at their next heartbeat and go to maintenance mode, and such a
// binary refuses to start. A contract migration ships in the release after
// the one that stopped using what it removes, so that a rolling upgrade
// from the release before never meets it.

// compatSince is the migration that made schema_compat.
const compatSince = 12

// minNoMigrate is the oldest schema a node started with --no-migrate runs
// on (in maintenance mode): it needs the nodes table (00010).
const minNoMigrate = 10

// Step is one migration as `lobby admin db migrate` lists it.
type Step struct {
	Version int64  `json:"version"`
	Name    string `json:"name"` // its file, or "River migration N"
	// Floor, when not 0, makes it a contract migration: only binaries
	// that know schema Floor or later may run on the result.
	Floor int64 `json:"floor,omitempty"`
}

// Contract reports whether the step is a contract migration.
func (s Step) Contract() bool { return s.Floor > 0 }

// floorAt is the floor of a database at version v: the highest floor of
// the contract migrations up to v.
func floorAt(steps []Step, v int64) int64 {
	var f int64
	for _, s := range steps {
		if s.Version <= v {
			f = max(f, s.Floor)
		}
	}
	return f
}

var (
	contractLine = regexp.MustCompile(`(?m)^--\s*lobby:contract\b(.*)$`)
	floorArg     = regexp.MustCompile(`^\s+floor=(\d+)\s*$`)
)

// contractFloor reads the contract mark of a SQL migration: 0 when it has
// none (an expand migration).
func contractFloor(sqlText string) (int64, error) {
	marks := contractLine.FindAllStringSubmatch(sqlText, -1)
	switch len(marks) {
	case 0:
		return 0, nil
	case 1:
	default:
		return 0, errors.New("it has more than one `-- lobby:contract` line")
	}
	m := floorArg.FindStringSubmatch(marks[0][1])
	if m == nil {
		return 0, errors.New("its contract mark must read `-- lobby:contract floor=N`, N the oldest schema version whose code may run on the result")
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// listSteps names every migration and reads the contract marks.
func listSteps(migrations fs.FS, sources []*goose.Source, tests []testMigration) ([]Step, error) {
	steps := make([]Step, 0, len(sources))
	for _, src := range sources {
		st := Step{Version: src.Version, Name: path.Base(src.Path)}
		if src.Type == goose.TypeSQL {
			b, err := fs.ReadFile(migrations, src.Path)
			if err == nil {
				st.Floor, err = contractFloor(string(b))
			}
			if err != nil {
				return nil, fmt.Errorf("migrations: %s: %w", src.Path, err)
			}
		} else if i := slices.IndexFunc(riverSteps, func(r riverStep) bool { return r.Version == src.Version }); i >= 0 {
			st.Name = fmt.Sprintf("River migration %d", riverSteps[i].River)
		} else if i := slices.IndexFunc(tests, func(t testMigration) bool { return t.Version == src.Version }); i >= 0 {
			st.Name, st.Floor = tests[i].Name, tests[i].Floor
		}
		if st.Contract() && (st.Version <= compatSince || st.Floor > st.Version) {
			return nil, fmt.Errorf("migrations: %s (version %d): a contract migration must come after %d and its floor (%d) cannot be above its own version",
				st.Name, st.Version, compatSince, st.Floor)
		}
		steps = append(steps, st)
	}
	if len(steps) == 0 {
		return nil, errors.New("migrations: none found")
	}
	slices.SortFunc(steps, func(a, b Step) int { return int(a.Version - b.Version) })
	return steps, nil
}

// queryer is a *sql.DB, *sql.Conn or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ReadSchema reads the schema version and floor of a database that may
// have no schema at all (version 0).
func ReadSchema(ctx context.Context, q queryer, dialect string) (store.Schema, error) {
	exists := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`
	if dialect == store.Postgres {
		exists = `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1`
	}
	var n int
	if err := q.QueryRowContext(ctx, exists, VersionTable).Scan(&n); err != nil {
		return store.Schema{}, fmt.Errorf("read schema version: %w", err)
	}
	if n == 0 {
		return store.Schema{}, nil
	}
	return schemaOf(ctx, q)
}

// schemaOf reads the version and floor of a database with a version table.
func schemaOf(ctx context.Context, q queryer) (store.Schema, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max(version_id) FROM "+VersionTable).Scan(&v); err != nil {
		return store.Schema{}, fmt.Errorf("read schema version: %w", err)
	}
	s := store.Schema{Version: v.Int64}
	if s.Version < compatSince {
		return s, nil
	}
	if err := q.QueryRowContext(ctx, "SELECT floor_version FROM schema_compat WHERE id = 1").Scan(&s.Floor); err != nil {
		return store.Schema{}, fmt.Errorf("read schema floor: %w", err)
	}
	return s, nil
}

// raiseFloor raises the floor before the contract migration s runs.
func raiseFloor(ctx context.Context, cfg MigrateConfig, s Step) error {
	cfg.Logger.Warn("contract migration: raising the schema's floor first; nodes that know less go to maintenance mode",
		"migration", s.Name, "version", s.Version, "floor", s.Floor)
	_, err := cfg.DB.ExecContext(ctx, bindFor(cfg.Dialect, `UPDATE schema_compat SET floor_version = ? WHERE id = 1 AND floor_version < ?`), s.Floor, s.Floor)
	if err != nil {
		return fmt.Errorf("raise the schema's floor to %d before migration %d: %w", s.Floor, s.Version, err)
	}
	return nil
}

// settleFloor sets the floor of the version the database is at.
func settleFloor(ctx context.Context, cfg MigrateConfig, steps []Step) error {
	cur, err := ReadSchema(ctx, cfg.DB, cfg.Dialect)
	if err != nil || cur.Version < compatSince {
		return err
	}
	if _, err := cfg.DB.ExecContext(ctx, bindFor(cfg.Dialect, `UPDATE schema_compat SET floor_version = ? WHERE id = 1`), floorAt(steps, cur.Version)); err != nil {
		return fmt.Errorf("set the schema's floor: %w", err)
	}
	return nil
}

// Pending returns where the database's schema stands and the migrations
// Migrate would apply, in order; it refuses a database this binary may
// not run on like Migrate.
func Pending(ctx context.Context, cfg MigrateConfig) (store.Schema, []Step, error) {
	_, steps, err := newProvider(cfg)
	if err != nil {
		return store.Schema{}, nil, err
	}
	cur, err := ReadSchema(ctx, cfg.DB, cfg.Dialect)
	if err != nil {
		return cur, nil, err
	}
	if cur.State(cfg.known()) == store.SchemaIncompatible {
		return cur, nil, cur.TooNew(cfg.known())
	}
	var out []Step
	for _, s := range steps {
		if s.Version > cur.Version {
			out = append(out, s)
		}
	}
	return cur, out, nil
}

// Check is what opening a database without migrating it does instead of
// Migrate: it reads the schema and refuses a database this binary may not
// run on (store.ErrSchemaTooNew); an older one is left as it is.
func Check(ctx context.Context, cfg MigrateConfig) (store.Schema, error) {
	cur, err := ReadSchema(ctx, cfg.DB, cfg.Dialect)
	if err == nil && cur.State(cfg.known()) == store.SchemaIncompatible {
		err = cur.TooNew(cfg.known())
	}
	return cur, err
}

// CheckNoMigrate refuses to run a node on schema s without migrating it
// (--no-migrate, maintenance mode) when s is too old even for that.
func CheckNoMigrate(s store.Schema) error {
	switch {
	case s.Version == 0:
		return errors.New("the database has no Lobby schema yet: start without --no-migrate (it creates the schema), or run `lobby admin db migrate` first")
	case s.Version < minNoMigrate:
		return fmt.Errorf("the database's schema version is %d, too old to run on without migrating (--no-migrate needs %d or later): run `lobby admin db migrate` first, or start without --no-migrate", s.Version, minNoMigrate)
	}
	return nil
}

// testMigration is a migration of a test release (build tags
// lobby_nextrelease, lobby_contractrelease), written once for both
// dialects, so that a test can run two releases of Lobby side by side.
type testMigration struct {
	Version  int64
	Name     string
	Floor    int64 // not 0: a contract migration
	Up, Down string
}

func testGoMigrations(tests []testMigration) []*goose.Migration {
	out := make([]*goose.Migration, 0, len(tests))
	for _, m := range tests {
		out = append(out, goose.NewGoMigration(m.Version,
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { _, err := tx.ExecContext(ctx, m.Up); return err }},
			&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error { _, err := tx.ExecContext(ctx, m.Down); return err }}))
	}
	return out
}
