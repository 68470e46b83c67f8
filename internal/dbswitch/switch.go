package dbswitch

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"

	"lobby/internal/cluster"
	"lobby/internal/datadir"
	"lobby/internal/pki"
	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storecopy"
)

// ToPostgres says how to move a node onto PostgreSQL.
type ToPostgres struct {
	URL    string
	SiteID int
	// Copy copies the embedded database into PostgreSQL first, which
	// must then be empty.
	Copy bool
	// DiscardLocal joins a cluster even though the embedded database
	// holds data the cluster lacks (the file stays as it is).
	DiscardLocal bool
}

// SwitchToPostgres moves the node onto the PostgreSQL database at p.URL
// under site ID p.SiteID (`lobby admin db switch --postgres`). An empty
// database gets the node's data with p.Copy (and is refused without it
// while the node has data); a database holding a cluster is joined as it
// is, refused while the node's embedded database holds rows the cluster
// lacks unless p.DiscardLocal, or while a live node holds the site ID.
func (t *Tool) SwitchToPostgres(ctx context.Context, p ToPostgres) error {
	l, prev, hasPrev, err := t.lock("lobby admin db switch")
	if err != nil {
		return err
	}
	defer l.Release()
	onSQLite := !hasPrev || prev.Database == datadir.Embedded
	if !onSQLite && p.Copy {
		return fmt.Errorf("this node already runs on PostgreSQL (%s/%s): --copy copies its embedded database, which is from before that switch; leave --copy out, or move the node back with --embedded first", t.DataDir, datadir.ChoiceFile)
	}
	local, err := t.localInfo(ctx, onSQLite)
	if err != nil {
		return err
	}
	pg, w, err := openPG(ctx, p.URL)
	if err != nil {
		return err
	}
	defer pg.Close()
	name := "the database at " + w
	info, err := inspect(ctx, pg, name, true)
	if err != nil {
		return err
	}
	if info.Empty() {
		err = t.intoEmpty(ctx, p, name, local)
	} else {
		err = t.joinCluster(ctx, p, pg, name, info, local)
	}
	if err != nil {
		return err
	}
	if err := datadir.WriteChoice(t.DataDir, datadir.Choice{Database: datadir.Postgres, Postgres: p.URL, SiteID: p.SiteID, Switched: t.now().UTC()}); err != nil {
		return err
	}
	t.say("This node now uses %s as site %d (recorded in %s/%s).", name, p.SiteID, t.DataDir, datadir.ChoiceFile)
	if !onSQLite && prev.Postgres != p.URL {
		if w, err := where(prev.Postgres); err == nil {
			t.say("It leaves the database at %s, whose data stays there.", w)
		}
	}
	if onSQLite && local != nil {
		t.say("Its embedded database %s stays as it was, as a backup; `lobby admin db switch --embedded` moves the node back.", t.sqlitePath())
	}
	t.say("Start it with: LOBBY_CLUSTER_KEY=... lobby server --data %s", t.DataDir)
	return nil
}

// localInfo reads the embedded database when the node runs on it; nil
// when it does not or there is none.
func (t *Tool) localInfo(ctx context.Context, onSQLite bool) (*storecopy.Info, error) {
	if !onSQLite {
		return nil, nil
	}
	if _, err := os.Stat(t.sqlitePath()); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := storecopy.OpenSQLite(t.sqlitePath())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return inspect(ctx, db, t.sqlitePath(), true)
}

// intoEmpty moves the node into an empty database: its data first, with
// p.Copy.
func (t *Tool) intoEmpty(ctx context.Context, p ToPostgres, name string, local *storecopy.Info) error {
	hasData := local != nil && !local.Empty()
	switch {
	case hasData && !p.Copy:
		return fmt.Errorf("%s is empty and this node's data is in %s (%s): add --copy to copy it there first, so that the node keeps its users, pools and hosts (or run `lobby admin db copy`)",
			name, t.sqlitePath(), storecopy.Summary(local.Rows))
	case hasData:
		return t.copyToPG(ctx, p.URL)
	case p.Copy:
		t.say("This node has no data to copy: the node starts %s afresh.", name)
	}
	return nil
}

// joinCluster checks that the node can join the cluster that the
// database holds without leaving anything behind.
func (t *Tool) joinCluster(ctx context.Context, p ToPostgres, pg storecopy.DB, name string, info *storecopy.Info, local *storecopy.Info) error {
	if p.Copy {
		return fmt.Errorf("--copy needs an empty database, and %s holds a cluster's data (%s): leave --copy out to join that cluster", name, storecopy.Summary(info.Rows))
	}
	if err := siteFree(ctx, pg, p.SiteID); err != nil {
		return err
	}
	if err := t.checkClusterKey(ctx, pg, name); err != nil {
		return err
	}
	if local != nil && !local.Empty() {
		if err := t.checkLeftBehind(ctx, pg, name, p.DiscardLocal); err != nil {
			return err
		}
	}
	switch info.State(sqlstore.SchemaVersion) {
	case store.SchemaBehind:
		t.say("%s is at schema version %d: the node migrates it to %d when it starts.", name, info.Version, sqlstore.SchemaVersion)
	case store.SchemaAhead:
		t.say("%s is at schema version %d, newer than this Lobby's %d, which it may still serve (a rolling upgrade): upgrade this node to the release the other nodes run.", name, info.Version, sqlstore.SchemaVersion)
	}
	return nil
}

// siteFree refuses a site ID a live node holds (its heartbeat, by the
// database's clock, is recent).
func siteFree(ctx context.Context, pg storecopy.DB, site int) error {
	var nodeName, addr string
	var age float64
	err := pg.SQL.QueryRowContext(ctx, `SELECT name, address, EXTRACT(EPOCH FROM now() - heartbeat)::float8 FROM nodes WHERE site_id = $1`, site).Scan(&nodeName, &addr, &age)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the cluster's nodes: %w", err)
	}
	if age < cluster.DefaultStaleAfter.Seconds() {
		return fmt.Errorf("site ID %d is held by node %q (%s), which is alive: give this node its own --site-id", site, nodeName, addr)
	}
	return nil
}

// checkClusterKey refuses a LOBBY_CLUSTER_KEY that is not the cluster's.
func (t *Tool) checkClusterKey(ctx context.Context, pg storecopy.DB, name string) error {
	stored, ok, err := setting(ctx, pg, pki.CASetting)
	if err != nil || !ok {
		return err
	}
	key, given, err := t.clusterKey()
	if err != nil || !given {
		return err
	}
	sealed, err := pki.SealedWith(stored, key)
	if err == nil && !sealed {
		err = fmt.Errorf("LOBBY_CLUSTER_KEY is not the cluster key of %s: give the key its nodes run with", name)
	}
	return err
}

// checkLeftBehind refuses, unless discard, when the embedded database
// holds rows the cluster lacks.
func (t *Tool) checkLeftBehind(ctx context.Context, pg storecopy.DB, name string, discard bool) error {
	lite, err := storecopy.OpenSQLite(t.sqlitePath())
	if err != nil {
		return err
	}
	defer lite.Close()
	missing, err := storecopy.Missing(ctx, lite, pg, compareOptions())
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	var why []string
	ownCA, err := caFingerprint(ctx, lite)
	if err != nil {
		return err
	}
	theirCA, err := caFingerprint(ctx, pg)
	if err != nil {
		return err
	}
	if ownCA != "" && theirCA != "" && ownCA != theirCA {
		why = append(why, fmt.Sprintf("the cluster has another certificate authority (SHA-256 %s), so the hosts that joined this node would have to join again", theirCA))
	}
	if discard {
		t.say("Leaving behind what only this node's embedded database holds (%s), as --discard-local asks; %s stays as it is.", storecopy.Summary(missing), t.sqlitePath())
		return nil
	}
	why = append([]string{fmt.Sprintf("this node's embedded database holds data that %s lacks (%s)", name, storecopy.Summary(missing))}, why...)
	return fmt.Errorf("%s: joining would leave it behind. To keep it, copy it with --copy into an empty database instead; to join anyway, add --discard-local (%s stays as it is, as a backup)",
		strings.Join(why, "; "), t.sqlitePath())
}
