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

// Copy copies the node's embedded database into the empty PostgreSQL
// database at dbURL (`lobby admin db copy`), migrating both to this
// Lobby's schema first. It does not move the node: Switch does.
func (t *Tool) Copy(ctx context.Context, dbURL string) error {
	l, c, ok, err := t.lock("lobby admin db copy")
	if err != nil {
		return err
	}
	defer l.Release()
	if ok && c.Database == datadir.Postgres {
		return fmt.Errorf("this node moved to PostgreSQL on %s (see %s/%s): its embedded database is from before that, and copying it would bring old data back; to bring the cluster's data into the embedded database, run `lobby admin db switch --embedded --copy`",
			c.Switched.Format("2006-01-02 15:04"), t.DataDir, datadir.ChoiceFile)
	}
	return t.copyToPG(ctx, dbURL)
}

// copyToPG copies the embedded database into PostgreSQL, which must hold
// no data.
func (t *Tool) copyToPG(ctx context.Context, dbURL string) error {
	lite, err := t.openLocal(ctx)
	if err != nil {
		return err
	}
	defer lite.Close()
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
	if !info.Empty() {
		return notEmpty(name, info.Rows)
	}
	if err := t.migrate(ctx, store.Postgres, dbURL, name, info.Version); err != nil {
		return err
	}
	reseal, note, err := t.keysToPG(ctx, lite)
	if err != nil {
		return err
	}
	rep, err := storecopy.Copy(ctx, lite, pg, storecopy.Options{Transform: map[string]func(storecopy.Row) error{
		"settings": reseal, "hosts": hostsDown,
	}})
	var ne *storecopy.NotEmptyError
	if errors.As(err, &ne) {
		return notEmpty(name, ne.Rows) // written to since the check
	}
	if err != nil {
		return fmt.Errorf("copy into %s: %w; nothing was written", name, err)
	}
	t.report(rep, t.sqlitePath(), name)
	t.say("%s", note)
	return nil
}

func notEmpty(name string, rows []storecopy.TableRows) error {
	return fmt.Errorf("%s already holds Lobby data (%s): a copy goes only into an empty database, so that nothing in it is overwritten; give a new database, or join that cluster with `lobby admin db switch` without --copy",
		name, storecopy.Summary(rows))
}

// openLocal opens the embedded database for a copy, migrated to this
// Lobby's schema as the node's start would.
func (t *Tool) openLocal(ctx context.Context) (storecopy.DB, error) {
	path := t.sqlitePath()
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return storecopy.DB{}, fmt.Errorf("%s has no embedded database (%s is missing): this node never ran standalone; give the node's --data", t.DataDir, datadir.SQLiteFile)
	}
	db, err := storecopy.OpenSQLite(path)
	if err != nil {
		return db, err
	}
	info, err := inspect(ctx, db, path, false)
	if err != nil {
		db.Close()
		return storecopy.DB{}, err
	}
	if info.Version == sqlstore.SchemaVersion {
		return db, nil
	}
	db.Close()
	if err := t.migrate(ctx, store.SQLite, path, path, info.Version); err != nil {
		return storecopy.DB{}, err
	}
	return storecopy.OpenSQLite(path)
}

// keysToPG decides how the cluster CA moves into PostgreSQL: sealed with
// LOBBY_CLUSTER_KEY when given (resealed if the node ran with another
// key), or with the node's own key, which becomes the cluster key. It
// returns the settings transform and what to tell the operator.
func (t *Tool) keysToPG(ctx context.Context, lite storecopy.DB) (func(storecopy.Row) error, string, error) {
	stored, ok, err := setting(ctx, lite, pki.CASetting)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return nil, "This node has no cluster CA yet: the first node to start on PostgreSQL makes one, sealed with its LOBBY_CLUSTER_KEY.", nil
	}
	given, hasGiven, err := t.clusterKey()
	if err != nil {
		return nil, "", err
	}
	from, err := t.sealingKey(stored, given, hasGiven)
	if err != nil {
		return nil, "", err
	}
	ca, err := fingerprint(stored)
	if err != nil {
		return nil, "", err
	}
	file := pki.StandaloneKeyFile(t.DataDir)
	switch {
	case !hasGiven:
		return nil, fmt.Sprintf("The cluster CA (SHA-256 %s) stays sealed with this node's own key, %s, which is now the cluster key: start every node on this database with it, e.g. LOBBY_CLUSTER_KEY=\"$(cat %s)\" (copy the file to the other nodes; keep it secret).", ca, file, file), nil
	case from.Equal(given):
		return nil, fmt.Sprintf("The cluster CA (SHA-256 %s) is sealed with LOBBY_CLUSTER_KEY already: start every node with it.", ca), nil
	}
	return resealCA(from, given), fmt.Sprintf("The cluster CA (SHA-256 %s) is now sealed with LOBBY_CLUSTER_KEY in PostgreSQL (the embedded database keeps its own key): start every node with that key. Hosts keep their certificates.", ca), nil
}

// sealingKey finds which key, the given one or the node's own, seals a
// stored CA.
func (t *Tool) sealingKey(stored string, given pki.ClusterKey, hasGiven bool) (pki.ClusterKey, error) {
	if hasGiven {
		if ok, err := pki.SealedWith(stored, given); err != nil || ok {
			return given, err
		}
	}
	file := pki.StandaloneKeyFile(t.DataDir)
	own, err := pki.ReadStandaloneKey(t.DataDir)
	if err != nil {
		return pki.ClusterKey{}, fmt.Errorf("the cluster CA is not sealed with LOBBY_CLUSTER_KEY, and this node's own key cannot be read (%w): restore %s from a backup of the data directory, or give the key the CA is sealed with as LOBBY_CLUSTER_KEY", err, file)
	}
	ok, err := pki.SealedWith(stored, own)
	if err != nil {
		return own, err
	}
	if !ok {
		return own, fmt.Errorf("the cluster CA is sealed with neither LOBBY_CLUSTER_KEY nor %s: give the key the node ran with as LOBBY_CLUSTER_KEY", file)
	}
	return own, nil
}

// resealCA seals the CA row with to instead of from on its way.
func resealCA(from, to pki.ClusterKey) func(storecopy.Row) error {
	return func(row storecopy.Row) error {
		if row["name"] != pki.CASetting {
			return nil
		}
		v, err := pki.Reseal(fmt.Sprint(row["value"]), from, to)
		if err != nil {
			return fmt.Errorf("seal the cluster CA again: %w", err)
		}
		row["value"] = v
		return nil
	}
}

// report prints what a copy did, table by table.
func (t *Tool) report(rep *storecopy.Report, from, to string) {
	t.say("Copied %s into %s (schema version %d) in one transaction:", from, to, rep.Version)
	for _, r := range rep.Tables {
		t.say("  %-20s %8d", r.Table, r.Rows)
	}
	t.say("  %-20s %8d rows, each table's count checked before the commit", "total", rep.Total())
	for _, s := range rep.Skipped {
		t.say("  not copied: %s", s)
	}
}
