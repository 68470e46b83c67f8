package storecopy

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"

	"lobby/internal/store/sqlstore"
)

// Tables the copy leaves out, and why. Every other table of the schema is
// copied, so a table a later migration adds is copied without a change
// here; a table that exists on one side only must be listed.
var notCopied = map[string]string{
	sqlstore.VersionTable: "written by the target's own migrations",
	"schema_compat":       "written by the target's own migrations",
	"river_migration":     "written by the target's own migrations",
	"nodes":               "each node registers itself where it runs",
	"node_health":         "each node records its own health where it runs",
	"leases":              "held by running nodes only",
	"river_leader":        "held by running nodes only",
	"river_notification":  "River's messages between running processes",
	"river_client":        "River's records of running processes",
	"river_client_queue":  "River's records of running processes",
}

// notCopiedTable reports whether the copy leaves a table out.
func notCopiedTable(name string) bool {
	_, ok := notCopied[name]
	return ok
}

// migrationTables hold what migrations write: a database holding rows in
// these only is empty.
var migrationTables = []string{sqlstore.VersionTable, "schema_compat", "river_migration"}

// kind is how a column's values travel between the dialects.
type kind int

const (
	kText      kind = iota // string
	kInt                   // int64
	kFloat                 // float64
	kBool                  // bool: 0/1 on SQLite
	kTime                  // time.Time: unix µs INTEGER (Lobby) or River's text on SQLite
	kJSON                  // JSON text: TEXT or River's JSONB blob on SQLite
	kStrArray              // JSON array text ⇄ PostgreSQL text[] / varchar[]
	kJSONArray             // JSON array text ⇄ PostgreSQL jsonb[]
	kBits                  // int64 ⇄ PostgreSQL bit(n)
	kBytes                 // []byte
	kEnum                  // string ⇄ a PostgreSQL enum
)

// column is one column as both dialects declare it.
type column struct {
	name   string
	kind   kind
	pgType string // format_type, for casts
	decl   string // SQLite's declared type, lower case
	// serial is the PostgreSQL sequence that numbers the column, if any;
	// identity says it is GENERATED ALWAYS (inserts must override it).
	serial   string
	identity bool
	err      error // the type is one the copy does not know
}

// sqliteText reports whether SQLite stores a time as River's text
// rather than Lobby's unix microseconds.
func (c column) sqliteText() bool { return !strings.Contains(c.decl, "int") }

// sqliteJSONB reports whether SQLite keeps the JSON in River's binary
// JSONB (a blob) rather than as TEXT.
func (c column) sqliteJSONB() bool { return strings.Contains(c.decl, "blob") }

// table is a table both databases have, with its columns, primary key
// and the PostgreSQL identity columns to override on insert.
type table struct {
	name string
	cols []column
	key  []string
}

func (t *table) col(name string) (column, bool) {
	for _, c := range t.cols {
		if c.name == name {
			return c, true
		}
	}
	return column{}, false
}

func (t *table) hasIdentity() bool {
	return slices.ContainsFunc(t.cols, func(c column) bool { return c.identity })
}

// schema is what the two databases hold, read from their catalogs.
type schema struct {
	// tables are in both databases, in an order where every table comes
	// after those it references.
	tables []*table
	// onlySQLite and onlyPG name the tables of one side only.
	onlySQLite, onlyPG []string
	// problems are what keeps a copied table from being copied: columns
	// that differ between the two sides, types the copy does not know.
	problems []string
}

// copyable returns the tables to copy, or an error naming what differs.
func (s *schema) copyable() ([]*table, error) {
	var errs []string
	errs = append(errs, s.problems...)
	for _, n := range s.onlySQLite {
		if !notCopiedTable(n) {
			errs = append(errs, fmt.Sprintf("table %s exists in SQLite only", n))
		}
	}
	for _, n := range s.onlyPG {
		if !notCopiedTable(n) {
			errs = append(errs, fmt.Sprintf("table %s exists in PostgreSQL only", n))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("the two databases' schemas differ (%s): both must be at the same schema version of one Lobby release", strings.Join(errs, "; "))
	}
	return slices.DeleteFunc(slices.Clone(s.tables), func(t *table) bool { return notCopiedTable(t.name) }), nil
}

// readSchema reads both catalogs. Types come from PostgreSQL's, which
// says more than SQLite's declared types.
func readSchema(ctx context.Context, lite, pg *sql.DB) (*schema, error) {
	liteCols, err := sqliteColumns(ctx, lite)
	if err != nil {
		return nil, err
	}
	pgCols, refs, keys, err := pgCatalog(ctx, pg)
	if err != nil {
		return nil, err
	}
	s := &schema{}
	byName := map[string]*table{}
	for name, pcs := range pgCols {
		lcs, ok := liteCols[name]
		if !ok {
			s.onlyPG = append(s.onlyPG, name)
			continue
		}
		t := &table{name: name, key: keys[name]}
		var problems []string
		for _, c := range pcs {
			decl, ok := lcs[c.name]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("column %s.%s exists in PostgreSQL only", name, c.name))
			case c.err != nil:
				problems = append(problems, fmt.Sprintf("column %s.%s: %v", name, c.name, c.err))
			default:
				c.decl = decl
				t.cols = append(t.cols, c)
			}
		}
		for n := range lcs {
			if !slices.ContainsFunc(pcs, func(c column) bool { return c.name == n }) {
				problems = append(problems, fmt.Sprintf("column %s.%s exists in SQLite only", name, n))
			}
		}
		if !notCopiedTable(name) {
			s.problems = append(s.problems, problems...)
		}
		byName[name] = t
	}
	for name := range liteCols {
		if _, ok := pgCols[name]; !ok {
			s.onlySQLite = append(s.onlySQLite, name)
		}
	}
	sort.Strings(s.onlySQLite)
	sort.Strings(s.onlyPG)
	sort.Strings(s.problems)
	s.tables, err = dependencyOrder(byName, refs)
	return s, err
}

// dependencyOrder sorts tables so that each comes after the tables it
// references (Kahn's algorithm, by name among equals).
func dependencyOrder(tables map[string]*table, refs map[string][]string) ([]*table, error) {
	var names []string
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	done := map[string]bool{}
	var out []*table
	for len(out) < len(names) {
		progress := false
		for _, n := range names {
			if done[n] {
				continue
			}
			ready := true
			for _, r := range refs[n] {
				if _, known := tables[r]; known && r != n && !done[r] {
					ready = false
				}
			}
			if ready {
				done[n], progress = true, true
				out = append(out, tables[n])
			}
		}
		if !progress {
			return nil, fmt.Errorf("the tables' foreign keys form a cycle: the copy cannot order them")
		}
	}
	return out, nil
}

// sqliteColumns reads table → column → declared type (lower case).
func sqliteColumns(ctx context.Context, db *sql.DB) (map[string]map[string]string, error) {
	names, err := tableNames(ctx, db, false)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, n := range names {
		rows, err := db.QueryContext(ctx, "SELECT name, type FROM pragma_table_info(?)", n)
		if err != nil {
			return nil, fmt.Errorf("read the columns of %s: %w", n, err)
		}
		cols := map[string]string{}
		for rows.Next() {
			var c, decl string
			if err := rows.Scan(&c, &decl); err != nil {
				rows.Close()
				return nil, err
			}
			cols[c] = strings.ToLower(decl)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out[n] = cols
	}
	return out, nil
}

// tableNames lists the tables of the database's schema (on PostgreSQL,
// the first of the connection's search_path, where migrations put them).
func tableNames(ctx context.Context, db queryer, postgres bool) ([]string, error) {
	q := `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if postgres {
		q = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY c.relname`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// pgCatalog reads the columns of every table, which tables each
// references, and their primary keys.
func pgCatalog(ctx context.Context, db *sql.DB) (cols map[string][]column, refs, keys map[string][]string, err error) {
	cols, refs, keys = map[string][]column{}, map[string][]string{}, map[string][]string{}
	rows, err := db.QueryContext(ctx, `
		SELECT c.relname, a.attname, t.typname, t.typtype, t.typcategory, format_type(a.atttypid, a.atttypmod),
		       a.attidentity = 'a', COALESCE(pg_get_serial_sequence(quote_ident(c.relname), a.attname), '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
		ORDER BY c.relname, a.attnum`)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read PostgreSQL's catalog: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tbl, typname, typtype, category string
		var c column
		if err := rows.Scan(&tbl, &c.name, &typname, &typtype, &category, &c.pgType, &c.identity, &c.serial); err != nil {
			return nil, nil, nil, err
		}
		c.kind, c.err = pgKind(typname, typtype, category)
		cols[tbl] = append(cols[tbl], c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	if err := collect(ctx, db, refs, `
		SELECT c.relname, r.relname FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE k.contype = 'f' AND n.nspname = current_schema()`); err != nil {
		return nil, nil, nil, fmt.Errorf("read foreign keys: %w", err)
	}
	if err := collect(ctx, db, keys, `
		SELECT c.relname, a.attname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
		WHERE i.indisprimary AND n.nspname = current_schema()
		ORDER BY c.relname, array_position(i.indkey, a.attnum)`); err != nil {
		return nil, nil, nil, fmt.Errorf("read primary keys: %w", err)
	}
	return cols, refs, keys, nil
}

// collect appends the second column of each row to the list of the first.
func collect(ctx context.Context, db *sql.DB, into map[string][]string, query string) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		into[k] = append(into[k], v)
	}
	return rows.Err()
}

// pgKind maps a PostgreSQL type to how its values travel.
func pgKind(typname, typtype, category string) (kind, error) {
	switch typname {
	case "text", "varchar", "bpchar", "name":
		return kText, nil
	case "int2", "int4", "int8":
		return kInt, nil
	case "float4", "float8", "numeric":
		return kFloat, nil
	case "bool":
		return kBool, nil
	case "timestamptz", "timestamp":
		return kTime, nil
	case "json", "jsonb":
		return kJSON, nil
	case "_text", "_varchar":
		return kStrArray, nil
	case "_jsonb", "_json":
		return kJSONArray, nil
	case "bit", "varbit":
		return kBits, nil
	case "bytea":
		return kBytes, nil
	}
	if typtype == "e" {
		return kEnum, nil
	}
	return 0, fmt.Errorf("type %s (category %s) is not one the copy knows: teach internal/store/storecopy its conversion", typname, category)
}
