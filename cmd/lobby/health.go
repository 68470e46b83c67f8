package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/health"
	"lobby/internal/pki"
	"lobby/internal/server"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
)

// HealthMain runs `lobby health`: the cluster's health check, against the
// database the nodes share, read-only.
type HealthMain struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	postgres, data, htmlFile string
	asJSON                   bool
	timeout                  time.Duration
	options                  health.Options
}

// Exit codes of `lobby health`.
const (
	healthOK     = 0 // every check passed (warnings allowed)
	healthFailed = 1 // a check failed
	healthUsage  = 2 // the command line or configuration is wrong
)

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := &HealthMain{Stdout: stdout, Stderr: stderr, Getenv: getenv}
	if err := m.ParseFlags(args); err != nil {
		return usageExit(stderr, "lobby health", err) // healthOK for -h, else healthUsage
	}
	return m.Run(ctx)
}

// ParseFlags reads flags and the environment (LOBBY_POSTGRES, LOBBY_DATA,
// LOBBY_MAX_CLOCK_SKEW, ...), as `lobby server` does.
func (m *HealthMain) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("lobby health", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(m.Stderr, "Usage: lobby health [--postgres URL | --data DIR] [--json] [--html FILE]\n\n"+
			"Checks the whole cluster from its database, read-only: every node alive and\n"+
			"ready, reaching the database and every other node, clocks within the skew\n"+
			"limit of the database's, certificates from the cluster CA and not near expiry,\n"+
			"releases and schema in agreement, every agent linked. It finds the cluster as\n"+
			"`lobby server` does: --postgres (LOBBY_POSTGRES) and LOBBY_CLUSTER_KEY, or a\n"+
			"standalone node's --data directory. Exit status: 0 healthy (warnings allowed),\n"+
			"1 a check failed, 2 a mistake in the command line.\n\nOptions:")
		fs.PrintDefaults()
	}
	fs.StringVar(&m.postgres, "postgres", "", "the cluster's PostgreSQL URL, as given to lobby server")
	fs.StringVar(&m.data, "data", "/var/lib/lobby", "a standalone node's data directory (its SQLite database), when no --postgres is given")
	fs.BoolVar(&m.asJSON, "json", false, "print the report as JSON")
	fs.StringVar(&m.htmlFile, "html", "", "also write the report as an HTML page to `FILE`")
	fs.DurationVar(&m.options.MaxClockSkew, "max-clock-skew", health.DefaultMaxClockSkew, "how far a node's clock may be from the database's")
	fs.DurationVar(&m.timeout, "timeout", health.DefaultProbeTimeout, "how long to wait for each node's address to answer")
	if err := parseFlags(fs, args, nil, m.Getenv); err != nil {
		return err
	}
	if m.options.MaxClockSkew <= 0 {
		return fmt.Errorf("--max-clock-skew %s is not valid: give a positive duration like 60s", m.options.MaxClockSkew)
	}
	if m.timeout <= 0 {
		return fmt.Errorf("--timeout %s is not valid: give a positive duration like 3s", m.timeout)
	}
	return nil
}

// Run checks the cluster, prints the report and returns the exit status.
func (m *HealthMain) Run(ctx context.Context) int {
	src, closeStore, err := m.source(ctx)
	if err != nil {
		fmt.Fprintf(m.Stderr, "lobby health: %v\n", err)
		return healthUsage
	}
	defer closeStore()
	prober := health.NewProber(m.timeout)
	defer prober.Close()
	src.Prober = prober
	rep := (&health.Checker{Source: src, Options: m.options}).Run(ctx)
	if m.htmlFile != "" {
		if err := writeFile(m.htmlFile, rep.WriteHTML); err != nil {
			fmt.Fprintf(m.Stderr, "lobby health: write the HTML report: %v\n", err)
			return healthUsage
		}
	}
	if m.asJSON {
		err = rep.WriteJSON(m.Stdout)
	} else {
		err = rep.WriteText(m.Stdout)
	}
	if err != nil {
		fmt.Fprintf(m.Stderr, "lobby health: %v\n", err)
		return healthFailed
	}
	if rep.Failed() {
		return healthFailed
	}
	return healthOK
}

// source opens the store read-only and says how to unseal the CA. A
// PostgreSQL that does not answer is not an error here: the report's store
// check says so. A malformed URL or key, or a --data without a database,
// is.
func (m *HealthMain) source(ctx context.Context) (health.Source, func(), error) {
	host, _ := os.Hostname()
	src := health.Source{From: "lobby health on " + host, KnownSchema: sqlstore.SchemaVersion}
	keyText := m.Getenv("LOBBY_CLUSTER_KEY")
	var key *pki.ClusterKey
	if keyText != "" {
		k, err := pki.ParseClusterKey(keyText)
		if err != nil {
			return src, nil, fmt.Errorf("LOBBY_CLUSTER_KEY: %w", err)
		}
		key = &k
	}
	var st store.Store
	var err error
	if m.postgres != "" {
		if !strings.Contains(m.postgres, "://") && !strings.Contains(m.postgres, "=") {
			return src, nil, fmt.Errorf("--postgres %q is not a PostgreSQL URL like postgres://user:password@host/db", m.postgres)
		}
		src.Database = postgres.DescribeURL(m.postgres)
		st, err = postgres.OpenReadOnly(ctx, m.postgres, nil)
		if err != nil && strings.HasPrefix(err.Error(), "database URL:") {
			return src, nil, fmt.Errorf("--postgres: %w", err)
		}
	} else {
		path := filepath.Join(m.data, datadir.SQLiteFile)
		src.Database = path
		if st, err = sqlite.OpenReadOnly(ctx, path, nil); err != nil {
			return src, nil, fmt.Errorf("%w (or give the cluster's --postgres URL)", err)
		}
		if key == nil { // a standalone node keeps its own key
			if k, err := pki.ReadStandaloneKey(m.data); err == nil {
				key = &k
			}
		}
	}
	if err != nil {
		src.StoreErr = err
		return src, func() {}, nil
	}
	src.Store = st
	src.LoadCA = func(ctx context.Context) (*x509.Certificate, error) {
		if key == nil {
			return nil, health.ErrNoClusterKey
		}
		ca, err := pki.LoadCA(ctx, st, *key)
		if err != nil {
			return nil, err
		}
		return ca.Cert, nil
	}
	return src, func() { st.Close() }, nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// healthFlags are `lobby server`'s options of the health check and the
// watchdog.
func healthFlags(fs *flag.FlagSet, c *server.Config) {
	fs.DurationVar(&c.MaxClockSkew, "max-clock-skew", health.DefaultMaxClockSkew, "the health check's limit on a node's clock against the database's")
	fs.DurationVar(&c.WatchdogStore, "watchdog-store", health.DefaultStoreLimit, "how long the database may not answer before /readyz says 503")
	fs.DurationVar(&c.WatchdogLoop, "watchdog-loop", health.DefaultLoopLimit, "how long one of the node's loops may stall before /readyz says 503")
}
