// Package dbswitch moves a node between its embedded SQLite database and
// a cluster's shared PostgreSQL, as `lobby admin db copy` and `lobby
// admin db switch` do: it checks everything first (the node is stopped,
// the target is reachable, at a schema this Lobby knows, empty or already
// holding this node's data, the site ID free, the cluster key right) and
// refuses with a message saying what to do rather than leave data
// behind. The copy itself is storecopy's; the choice is recorded in the
// data directory (datadir), where `lobby server` reads it.
//
// The cluster CA moves with the data, so hosts keep their certificates
// and need no new join. Its key is sealed with the cluster key: a copy
// into PostgreSQL seals it again with LOBBY_CLUSTER_KEY when given, or
// keeps the node's own key (--data/cluster.key), which then becomes the
// cluster key every node needs. A copy back into SQLite seals it with the
// node's own key.
package dbswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"lobby/internal/datadir"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/store"
	"lobby/internal/store/postgres"
	"lobby/internal/store/sqlite"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storecopy"
)

// Tool runs the operator's database commands on one node's data
// directory.
type Tool struct {
	DataDir string
	// ClusterKey is LOBBY_CLUSTER_KEY, the key the cluster's nodes run
	// with; empty means the node's own key in DataDir/cluster.key.
	ClusterKey string
	// Out receives the report for the operator.
	Out io.Writer
	// Logger receives the migrations' messages; nil discards them.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

func (t *Tool) log() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

func (t *Tool) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

func (t *Tool) say(format string, args ...any) { fmt.Fprintf(t.Out, format+"\n", args...) }

func (t *Tool) sqlitePath() string { return filepath.Join(t.DataDir, datadir.SQLiteFile) }

// lock takes the data directory, refusing while a node (or another
// command) uses it, and reads the database recorded there (ok false when
// none is: the embedded one).
func (t *Tool) lock(what string) (*datadir.Lock, datadir.Choice, bool, error) {
	if st, err := os.Stat(t.DataDir); err != nil || !st.IsDir() {
		return nil, datadir.Choice{}, false, fmt.Errorf("data directory %s does not exist: give the node's --data", t.DataDir)
	}
	l, err := datadir.Acquire(t.DataDir, what)
	if errors.Is(err, datadir.ErrInUse) {
		return nil, datadir.Choice{}, false, fmt.Errorf("%w; the node must be stopped while its database moves", err)
	}
	if err != nil {
		return nil, datadir.Choice{}, false, err
	}
	c, ok, err := datadir.ReadChoice(t.DataDir)
	if err != nil {
		l.Release()
		return nil, datadir.Choice{}, false, err
	}
	return l, c, ok, nil
}

// clusterKey parses the given cluster key; ok is false when none is.
func (t *Tool) clusterKey() (k pki.ClusterKey, ok bool, err error) {
	if t.ClusterKey == "" {
		return pki.ClusterKey{}, false, nil
	}
	k, err = pki.ParseClusterKey(t.ClusterKey)
	if err != nil {
		return k, false, fmt.Errorf("LOBBY_CLUSTER_KEY: %w", err)
	}
	return k, true, nil
}

// where names a database URL without its password.
func where(dbURL string) (string, error) {
	cfg, err := pgconn.ParseConfig(dbURL)
	if err != nil {
		return "", fmt.Errorf("--postgres: %w", err) // pgconn's error hides the password
	}
	return postgres.Describe(*cfg), nil
}

// openPG connects to PostgreSQL for a check or a copy.
func openPG(ctx context.Context, dbURL string) (storecopy.DB, string, error) {
	w, err := where(dbURL)
	if err != nil {
		return storecopy.DB{}, "", err
	}
	pctx, cancel := context.WithTimeout(ctx, postgres.ConnectTimeout)
	defer cancel()
	db, err := storecopy.OpenPostgres(pctx, dbURL)
	if err != nil {
		return storecopy.DB{}, w, fmt.Errorf("cannot reach PostgreSQL at %s: %w; check that the server is running and accepts connections from this host, and the user, password and database name in the URL", w, err)
	}
	return db, w, nil
}

// inspect reads what a database holds, refusing a schema newer than this
// Lobby knows; ahead allows a newer one that this Lobby may still serve
// (a cluster in a rolling upgrade), which a node can join but a copy
// cannot write.
func inspect(ctx context.Context, db storecopy.DB, name string, ahead bool) (*storecopy.Info, error) {
	info, err := storecopy.Inspect(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	switch info.State(sqlstore.SchemaVersion) {
	case store.SchemaIncompatible:
		return nil, fmt.Errorf("%s is at schema version %d and needs a Lobby that knows schema %d or later; this one knows %d: run this command with the release that migrated it", name, info.Version, info.Floor, sqlstore.SchemaVersion)
	case store.SchemaAhead:
		if !ahead {
			return nil, fmt.Errorf("%s is at schema version %d, newer than the %d this Lobby knows: a newer release migrated it; run this command with that release", name, info.Version, sqlstore.SchemaVersion)
		}
	}
	return info, nil
}

// migrate brings a database to this Lobby's schema, as a node's start
// would, and says so when it changed anything.
func (t *Tool) migrate(ctx context.Context, dialect, target, name string, from int64) error {
	var db store.Store
	var err error
	if dialect == store.Postgres {
		db, err = postgres.Open(ctx, target, t.log())
	} else {
		db, err = sqlite.Open(ctx, target, t.log())
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}
	if from > 0 && from < sqlstore.SchemaVersion {
		t.say("Migrated %s from schema version %d to %d.", name, from, sqlstore.SchemaVersion)
	}
	return db.Close()
}

// setting reads one setting of a database; ok is false when it is unset.
func setting(ctx context.Context, db storecopy.DB, name string) (v string, ok bool, err error) {
	q := "SELECT value FROM settings WHERE name = ?"
	if db.Dialect == store.Postgres {
		q = "SELECT value FROM settings WHERE name = $1"
	}
	err = db.SQL.QueryRowContext(ctx, q, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read setting %s: %w", name, err)
	}
	return v, true, nil
}

// hostsDown marks every host down on its way: the node the copy comes
// from is stopped (or, for a copy back from a cluster, its hosts are
// linked to other nodes), and each host is up again when its agent links
// to the node.
func hostsDown(row storecopy.Row) error {
	if row["state"] == string(lobby.HostUp) {
		row["state"] = string(lobby.HostDown)
	}
	return nil
}

// compareOptions match rows across the two databases: the audit log by
// its content (its numbers alone could match another log's), the cluster
// CA by its certificate (the same CA sealed with another key is the same).
func compareOptions() storecopy.CompareOptions {
	return storecopy.CompareOptions{
		Identity: map[string][]string{
			"audit":    {"id", "at", "actor", "action", "target"},
			"settings": {"name", "value"},
		},
		Normalize: map[string]func(storecopy.Row) error{
			"settings": func(row storecopy.Row) error {
				if row["name"] != pki.CASetting {
					return nil
				}
				fp, err := fingerprint(fmt.Sprint(row["value"]))
				if err != nil {
					return err
				}
				row["value"] = fp
				return nil
			},
		},
	}
}

// caFingerprint is the fingerprint of a database's cluster CA, "" when it
// has none.
func caFingerprint(ctx context.Context, db storecopy.DB) (string, error) {
	v, ok, err := setting(ctx, db, pki.CASetting)
	if err != nil || !ok {
		return "", err
	}
	return fingerprint(v)
}

// fingerprint is the fingerprint of a stored cluster CA.
func fingerprint(stored string) (string, error) {
	fp, err := pki.StoredFingerprint(stored)
	if err != nil {
		return "", err
	}
	return pki.FingerprintHex(fp), nil
}
