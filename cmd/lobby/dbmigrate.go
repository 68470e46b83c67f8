package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"lobby/internal/cluster"
	"lobby/internal/datadir"
	"lobby/internal/lobby"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

// runDBMigrate is `lobby admin db migrate`: it migrates the database of
// a node (or of a cluster) to this binary's schema, with the migration lock
// the nodes take at start, after saying what it will do and to whom.
// Nodes that run on the database see the new schema at their next
// heartbeat: one started with --no-migrate leaves maintenance mode; one of
// an older release goes to maintenance mode if a contract migration
// raises the floor above what it knows.
func runDBMigrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("lobby admin db migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "/var/lib/lobby", "the node's data directory: without --postgres, the database it runs on (recorded by `lobby admin db switch`, else its lobby.db) is migrated")
	pg := fs.String("postgres", "", "PostgreSQL URL of the cluster's database")
	dryRun := fs.Bool("dry-run", false, "say what would be migrated, and change nothing")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: lobby admin db migrate [--postgres URL | --data DIR] [--dry-run]\n\n"+
			"Migrates the database to this binary's schema version, as a node does at start.\n"+
			"Options also come from LOBBY_POSTGRES and LOBBY_DATA.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, nil, getenv); err != nil {
		return usageExit(stderr, fs.Name(), err)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "lobby admin db migrate: %v\n", err)
		return 2
	}
	if *pg == "" {
		// The database `lobby server --data DIR` would run on.
		c, ok, err := datadir.ReadChoice(*data)
		if err != nil {
			fmt.Fprintf(stderr, "lobby admin db migrate: %v\n", err)
			return 1
		}
		if ok && c.Database == datadir.Postgres {
			*pg = c.Postgres
		}
	}
	if err := dbMigrate(ctx, stdout, log, *pg, *data, *dryRun); err != nil {
		fmt.Fprintf(stderr, "lobby admin db migrate: %v\n", err)
		return 1
	}
	return 0
}

// migratable is a database opened without migrating.
type migratable interface {
	store.Store
	MigrateConfig() sqlstore.MigrateConfig
}

func dbMigrate(ctx context.Context, w io.Writer, log *slog.Logger, pg, data string, dryRun bool) error {
	var db migratable
	var where string
	var err error
	if pg != "" {
		var p *postgres.DB
		p, err = postgres.OpenWith(ctx, pg, postgres.Options{Logger: log, NoMigrate: true})
		db, where = p, "PostgreSQL"
	} else {
		where = filepath.Join(data, datadir.SQLiteFile)
		if _, serr := os.Stat(where); serr != nil {
			return fmt.Errorf("no database at %s (%v): give the node's --data directory, or --postgres URL for a cluster", where, serr)
		}
		var s *sqlite.DB
		s, err = sqlite.OpenWith(ctx, where, sqlite.Options{Logger: log, NoMigrate: true})
		db = s
	}
	if err != nil {
		if errors.Is(err, store.ErrSchemaTooNew) {
			return fmt.Errorf("%w\n(this binary cannot migrate it: use the lobby binary of the newest release)", err)
		}
		return err
	}
	defer db.Close()
	cfg := db.MigrateConfig()
	cur, steps, err := sqlstore.Pending(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Database:  %s, schema %d (floor %d); this binary knows %d\n", where, cur.Version, cur.Floor, sqlstore.SchemaVersion)
	if len(steps) == 0 {
		if cur.Version > sqlstore.SchemaVersion {
			fmt.Fprintln(w, "Nothing to do: a newer release migrated the database, and this binary may still run on it.")
		} else {
			fmt.Fprintln(w, "Nothing to do: the database is up to date.")
		}
		return nil
	}
	printSteps(w, steps)
	floor := cur.Floor
	for _, s := range steps {
		floor = max(floor, s.Floor)
	}
	if cur.Version >= 10 { // the nodes table
		warnNodes(ctx, w, db, floor)
	}
	if dryRun {
		fmt.Fprintln(w, "Dry run: nothing changed.")
		return nil
	}
	if err := sqlstore.Migrate(ctx, cfg); err != nil {
		return err
	}
	after, err := db.Schema(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "Migrated:  schema %d → %d (floor %d → %d). Running nodes see it at their next heartbeat.\n", cur.Version, after.Version, cur.Floor, after.Floor)
	return nil
}

func printSteps(w io.Writer, steps []sqlstore.Step) {
	fmt.Fprintf(w, "Pending:   %d migration(s)\n", len(steps))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, s := range steps {
		kind := "expand: earlier releases keep running"
		if s.Contract() {
			kind = fmt.Sprintf("contract: only nodes that know schema %d or later keep running", s.Floor)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\n", s.Version, s.Name, kind)
	}
	tw.Flush()
}

// warnNodes names the live nodes the migration puts in maintenance mode
// (they know less than the new floor) and those it brings out of it.
func warnNodes(ctx context.Context, w io.Writer, db store.Store, floor int64) {
	nodes, err := db.ListNodes(ctx)
	if err != nil {
		fmt.Fprintf(w, "(the cluster's nodes could not be listed: %v)\n", err)
		return
	}
	var stop, resume []string
	now := time.Now()
	for _, n := range nodes {
		if now.Sub(n.Heartbeat) >= cluster.DefaultStaleAfter {
			continue
		}
		desc := fmt.Sprintf("site %d (%s, release %s, schema %d)", n.SiteID, n.Name, n.Version, n.SchemaVersion)
		switch {
		case n.SchemaVersion < floor:
			stop = append(stop, desc)
		case n.Mode == lobby.NodeMaintenance && n.SchemaVersion <= sqlstore.SchemaVersion:
			resume = append(resume, desc)
		}
	}
	if len(stop) > 0 {
		fmt.Fprintf(w, "Warning:   these live nodes know less than schema %d and go to maintenance mode (administrators only) until they are upgraded:\n  %s\n", floor, strings.Join(stop, "\n  "))
	}
	if len(resume) > 0 {
		fmt.Fprintf(w, "Resuming:  these nodes in maintenance mode should serve everyone again:\n  %s\n", strings.Join(resume, "\n  "))
	}
}
