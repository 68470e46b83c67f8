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
	l, err := t.lock("lobby admin db switch")
	if err != nil {
		return err
	}
	defer l.Release()
	prev, hasPrev, err := datadir.ReadChoice(t.DataDir)
	if err != nil {
		return err
	}
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
	info, err := inspect(ctx, pg, name)
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
	return inspect(ctx, db, t.sqlitePath())
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
	if info.Version < sqlstore.SchemaVersion {
		t.say("%s is at schema version %d: the node migrates it to %d when it starts.", name, info.Version, sqlstore.SchemaVersion)
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
	if sealed, err := pki.SealedWith(stored, key); err != nil || !sealed {
		if err == nil {
			err = fmt.Errorf("LOBBY_CLUSTER_KEY is not the cluster key of %s: give the key its nodes run with", name)
		}
		return err
	}
	return nil
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

// SwitchToEmbedded moves the node back onto its embedded database
// (`lobby admin db switch --embedded`). dbURL is the PostgreSQL database
// to compare with or copy from; empty means the recorded one. With copy,
// the cluster's data is copied into a new embedded database; without, the
// embedded database must exist, and the operator is told what the
// cluster gained since (it stays in PostgreSQL).
func (t *Tool) SwitchToEmbedded(ctx context.Context, dbURL string, copy bool) error {
	l, err := t.lock("lobby admin db switch")
	if err != nil {
		return err
	}
	defer l.Release()
	prev, hasPrev, err := datadir.ReadChoice(t.DataDir)
	if err != nil {
		return err
	}
	if dbURL == "" && hasPrev {
		dbURL = prev.Postgres
	}
	if !hasPrev || prev.Database == datadir.Embedded {
		if copy {
			return fmt.Errorf("this node already uses its embedded database %s: --copy would overwrite nothing but has nothing to copy over it; to copy into a new embedded database, move %s away first", t.sqlitePath(), datadir.SQLiteFile)
		}
		t.say("This node already uses its embedded database %s: nothing to do.", t.sqlitePath())
		return nil
	}
	if copy {
		err = t.copyToSQLite(ctx, dbURL)
	} else {
		err = t.backToSQLite(ctx, dbURL)
	}
	if err != nil {
		return err
	}
	if err := datadir.WriteChoice(t.DataDir, datadir.Choice{Database: datadir.Embedded, Switched: t.now().UTC()}); err != nil {
		return err
	}
	t.say("This node now uses its embedded database %s (recorded in %s/%s). Start it with: lobby server --data %s (without LOBBY_CLUSTER_KEY: it uses %s)",
		t.sqlitePath(), t.DataDir, datadir.ChoiceFile, t.DataDir, pki.StandaloneKeyFile(t.DataDir))
	return nil
}

// backToSQLite checks the embedded database left at the switch and tells
// what the cluster gained since.
func (t *Tool) backToSQLite(ctx context.Context, dbURL string) error {
	path := t.sqlitePath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s is missing: this node never ran on its embedded database, so there is nothing to go back to; add --copy to copy the cluster's data into a new one", path)
	}
	lite, err := storecopy.OpenSQLite(path)
	if err != nil {
		return err
	}
	defer lite.Close()
	info, err := inspect(ctx, lite, path)
	if err != nil {
		return err
	}
	if info.Version < sqlstore.SchemaVersion {
		t.say("%s is at schema version %d: the node migrates it to %d when it starts.", path, info.Version, sqlstore.SchemaVersion)
	}
	pg, w, err := openPG(ctx, dbURL)
	if err != nil {
		t.say("Could not compare with the cluster's database, so what changed there since the switch is not known: %v", err)
		return nil
	}
	defer pg.Close()
	gained, err := storecopy.Missing(ctx, pg, lite, compareOptions())
	if err != nil {
		return err
	}
	if len(gained) == 0 {
		t.say("The database at %s holds nothing that %s lacks.", w, path)
		return nil
	}
	t.say("Since the switch, the database at %s gained what %s lacks: %s. It stays there and is not copied back: use --copy (after moving %s away) to bring it into the embedded database.",
		w, path, storecopy.Summary(gained), datadir.SQLiteFile)
	return nil
}

// copyToSQLite copies the cluster's data into a new embedded database,
// sealing the CA with the node's own key.
func (t *Tool) copyToSQLite(ctx context.Context, dbURL string) (err error) {
	path := t.sqlitePath()
	if _, err := os.Stat(path); err == nil {
		lite, err := storecopy.OpenSQLite(path)
		if err != nil {
			return err
		}
		info, err := inspect(ctx, lite, path)
		lite.Close()
		if err != nil {
			return err
		}
		if !info.Empty() {
			return fmt.Errorf("%s holds data from before the switch (%s): a copy goes only into an empty database; move it away first (mv %s %s.old), then run this again", path, storecopy.Summary(info.Rows), path, path)
		}
	}
	pg, w, err := openPG(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pg.Close()
	name := "the database at " + w
	info, err := inspect(ctx, pg, name)
	if err != nil {
		return err
	}
	if info.Version != sqlstore.SchemaVersion {
		return fmt.Errorf("%s is at schema version %d and this Lobby at %d: run this command with the release the cluster runs", name, info.Version, sqlstore.SchemaVersion)
	}
	reseal, err := t.keysToSQLite(ctx, pg)
	if err != nil {
		return err
	}
	created := false
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		created = true
	}
	defer func() {
		if err != nil && created {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}
	}()
	if err := t.migrate(ctx, store.SQLite, path, path, 0); err != nil {
		return err
	}
	if err := datadir.MatchOwner(t.DataDir, path, path+"-wal", path+"-shm", pki.StandaloneKeyFile(t.DataDir)); err != nil {
		return err
	}
	lite, err := storecopy.OpenSQLite(path)
	if err != nil {
		return err
	}
	defer lite.Close()
	rep, err := storecopy.Copy(ctx, pg, lite, storecopy.Options{Transform: map[string]func(storecopy.Row) error{
		"settings": reseal, "hosts": hostsDown,
	}})
	if err != nil {
		return fmt.Errorf("copy %s into %s: %w; nothing was written", name, path, err)
	}
	if err := lite.Close(); err != nil {
		return err
	}
	t.report(rep, name, path)
	return datadir.MatchOwner(t.DataDir, path, path+"-wal", path+"-shm")
}

// keysToSQLite returns the transform that seals the cluster CA with the
// node's own key (made if it has none).
func (t *Tool) keysToSQLite(ctx context.Context, pg storecopy.DB) (func(storecopy.Row) error, error) {
	stored, ok, err := setting(ctx, pg, pki.CASetting)
	if err != nil || !ok {
		return nil, err
	}
	given, hasGiven, err := t.clusterKey()
	if err != nil {
		return nil, err
	}
	var keys []pki.ClusterKey
	if hasGiven {
		keys = append(keys, given)
	}
	if own, err := pki.ReadStandaloneKey(t.DataDir); err == nil {
		keys = append(keys, own) // the cluster may have adopted this node's key
	}
	var from *pki.ClusterKey
	for i := range keys {
		if ok, err := pki.SealedWith(stored, keys[i]); err != nil {
			return nil, err
		} else if ok {
			from = &keys[i]
			break
		}
	}
	if from == nil {
		return nil, errors.New("the cluster CA is sealed with the cluster key: give it as LOBBY_CLUSTER_KEY, so that the CA can be sealed with this node's own key in the embedded database")
	}
	own, err := pki.StandaloneKey(t.DataDir)
	if err != nil {
		return nil, err
	}
	if own.Equal(*from) {
		return nil, nil
	}
	return resealCA(*from, own), nil
}
