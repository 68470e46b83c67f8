package dbswitch

import (
	"context"
	"errors"
	"fmt"
	"os"

	"lobby/internal/datadir"
	"lobby/internal/pki"
	"lobby/internal/store"
	"lobby/internal/store/sqlstore"
	"lobby/internal/store/storecopy"
)

// SwitchToEmbedded moves the node back onto its embedded database
// (`lobby admin db switch --embedded`). dbURL is the PostgreSQL database
// to compare with or copy from; empty means the recorded one. withCopy
// copies the cluster's data into a new embedded database; without it, the
// embedded database must exist, and the operator is told what the
// cluster gained since (it stays in PostgreSQL).
func (t *Tool) SwitchToEmbedded(ctx context.Context, dbURL string, withCopy bool) error {
	l, prev, hasPrev, err := t.lock("lobby admin db switch")
	if err != nil {
		return err
	}
	defer l.Release()
	if dbURL == "" && hasPrev {
		dbURL = prev.Postgres
	}
	if !hasPrev || prev.Database == datadir.Embedded {
		if withCopy {
			return fmt.Errorf("this node already uses its embedded database %s: --copy would overwrite nothing but has nothing to copy over it; to copy into a new embedded database, move %s away first", t.sqlitePath(), datadir.SQLiteFile)
		}
		t.say("This node already uses its embedded database %s: nothing to do.", t.sqlitePath())
		return nil
	}
	if withCopy {
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
	info, err := inspect(ctx, lite, path, true)
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
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist) // by this copy: removed if it fails
	if statErr == nil {
		lite, err := storecopy.OpenSQLite(path)
		if err != nil {
			return err
		}
		info, err := inspect(ctx, lite, path, false)
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
	info, err := inspect(ctx, pg, name, false)
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
