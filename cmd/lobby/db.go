package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"lobby/internal/dbswitch"
)

// isDBMove reports whether args are `admin db copy|switch ...`, which
// work on a stopped node's data directory rather than through the API.
func isDBMove(args []string) bool {
	return len(args) > 2 && args[0] == "admin" && args[1] == "db" && (args[2] == "copy" || args[2] == "switch")
}

// runDBMove runs `lobby admin db copy` or `lobby admin db switch`
// (args start with the verb). Exit codes: 0 done, 1 refused or failed,
// 2 usage.
func runDBMove(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	name := "lobby admin db " + args[0]
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "/var/lib/lobby", "the node's data directory")
	pg := fs.String("postgres", "", "PostgreSQL URL (postgres://user:pass@host/db)")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error (the migrations' messages)")
	var site int
	var embedded, copyFirst, discard bool
	if args[0] == "switch" {
		fs.IntVar(&site, "site-id", 0, "this node's unique site ID in the cluster (1-65535)")
		fs.BoolVar(&embedded, "embedded", false, "move the node back onto its embedded SQLite database")
		fs.BoolVar(&copyFirst, "copy", false, "copy the node's data into the empty target first (with --embedded: the cluster's data into a new embedded database)")
		fs.BoolVar(&discard, "discard-local", false, "join a cluster even though the embedded database holds data it lacks (the file is kept)")
	}
	fs.Usage = func() { dbUsage(stderr, args[0], fs) }
	if err := parseFlags(fs, args[1:], nil, getenv); err != nil {
		return usageExit(stderr, name, err)
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, a...))
		return 2
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return usage("%v", err)
	}
	t := &dbswitch.Tool{DataDir: *data, ClusterKey: getenv("LOBBY_CLUSTER_KEY"), Out: stdout, Logger: log}
	switch {
	case args[0] == "copy" && *pg == "":
		return usage("give --postgres URL: the empty PostgreSQL database to copy the node's data into")
	case args[0] == "copy":
		err = t.Copy(ctx, *pg)
	case embedded && (site != 0 || discard):
		return usage("--embedded moves the node back onto its own database: --site-id and --discard-local are for --postgres")
	case embedded:
		err = t.SwitchToEmbedded(ctx, *pg, copyFirst)
	case *pg == "":
		return usage("give --postgres URL --site-id N to move the node onto PostgreSQL, or --embedded to move it back")
	case site < 1 || site > 65535:
		return usage("give --site-id N: this node's unique number in the cluster, from 1 to 65535")
	default:
		err = t.SwitchToPostgres(ctx, dbswitch.ToPostgres{URL: *pg, SiteID: site, Copy: copyFirst, DiscardLocal: discard})
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func dbUsage(w io.Writer, verb string, fs *flag.FlagSet) {
	switch verb {
	case "copy":
		fmt.Fprintln(w, "Usage: lobby admin db copy --data DIR --postgres URL\n\n"+
			"Copies a stopped standalone node's embedded database into an empty PostgreSQL\n"+
			"database, in one transaction, with every table's row count checked. The cluster\n"+
			"CA moves too (sealed with LOBBY_CLUSTER_KEY when set, else with the node's own\n"+
			"key, which becomes the cluster key), so hosts need no new join. It does not move\n"+
			"the node: `lobby admin db switch` does.\n\nOptions:")
	default:
		fmt.Fprintln(w, "Usage: lobby admin db switch --data DIR --postgres URL --site-id N [--copy] [--discard-local]\n"+
			"       lobby admin db switch --data DIR --embedded [--copy] [--postgres URL]\n\n"+
			"Moves a stopped node onto a shared PostgreSQL database, or back onto its embedded\n"+
			"one, after checking that nothing is left behind; `lobby server --data DIR` then\n"+
			"uses the database recorded in DIR/database.yaml.\n\nOptions:")
	}
	fs.PrintDefaults()
}
