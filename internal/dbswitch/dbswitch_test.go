package dbswitch

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/lobby"
	"lobby/internal/pki"
	"lobby/internal/server"
	"lobby/internal/store"
	"lobby/internal/store/pgtest"
	"lobby/internal/store/postgres"
	"lobby/internal/store/storecopy"
)

// caOf loads the cluster CA of a store with key and returns its
// fingerprint.
func caOf(t *testing.T, st store.Store, key pki.ClusterKey) (string, error) {
	t.Helper()
	if _, err := st.GetSetting(t.Context(), pki.CASetting); err != nil {
		return "", err
	}
	ca, err := pki.LoadOrCreateCA(t.Context(), st, key, time.Now())
	if err != nil {
		return "", err
	}
	return pki.FingerprintHex(ca.Fingerprint()), nil
}

func parseKey(t *testing.T, s string) pki.ClusterKey {
	t.Helper()
	k, err := pki.ParseClusterKey(s)
	must(t, err)
	return k
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return sha256.Sum256(b)
}

// TestCopyThenSwitch moves a trial node's data into PostgreSQL with a new
// cluster key and switches the node there: the same rows, the CA sealed
// with the new key, and the node's own files untouched.
func TestCopyThenSwitch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := runNode(t, server.Config{})
	url := pgtest.URL(t)
	key := pki.NewClusterKeyString()
	sqlitePath := filepath.Join(n.dir, datadir.SQLiteFile)
	before := fileHash(t, sqlitePath)

	tl, out := tool(n.dir, key)
	must(t, tl.Copy(ctx, url))
	for _, want := range []string{"in one transaction", "users", "river_job", "not copied: nodes", "sealed with LOBBY_CLUSTER_KEY", n.ca} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("copy report lacks %q:\n%s", want, out)
		}
	}
	if fileHash(t, sqlitePath) != before {
		t.Error("the copy changed the embedded database")
	}
	lite, pg := openStore(t, store.SQLite, sqlitePath), openStore(t, store.Postgres, url)
	sameData(t, lite, pg)
	hosts, err := pg.ListHosts(ctx, store.ListOptions{})
	must(t, err)
	for _, h := range hosts {
		if h.State != lobby.HostDown {
			t.Errorf("host %s is %s on PostgreSQL: a stopped node's hosts are down until they link again", h.Name, h.State)
		}
	}
	if fp, err := caOf(t, pg, parseKey(t, key)); err != nil || fp != n.ca {
		t.Errorf("the CA on PostgreSQL with LOBBY_CLUSTER_KEY: %s, %v; want %s", fp, err, n.ca)
	}
	own, err := pki.ReadStandaloneKey(n.dir)
	must(t, err)
	if _, err := caOf(t, pg, own); !errors.Is(err, pki.ErrWrongKey) {
		t.Errorf("the CA on PostgreSQL opens with the node's old key: %v", err)
	}
	if fp, err := caOf(t, lite, own); err != nil || fp != n.ca {
		t.Errorf("the embedded database's CA with the node's key: %s, %v", fp, err)
	}

	// A second copy is refused and changes nothing; so is --copy on a
	// database with data.
	tl, out = tool(n.dir, key)
	err = tl.Copy(ctx, url)
	if err == nil || !strings.Contains(err.Error(), "already holds Lobby data") || !strings.Contains(err.Error(), "users") {
		t.Errorf("second copy: %v", err)
	}
	err = tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 1, Copy: true})
	if err == nil || !strings.Contains(err.Error(), "--copy needs an empty database") {
		t.Errorf("switch --copy into a database with data: %v", err)
	}
	sameData(t, lite, pg)

	// Everything of the node is in the cluster: the switch needs no
	// --discard-local.
	must(t, tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 3}))
	c, ok, err := datadir.ReadChoice(n.dir)
	must(t, err)
	if !ok || c.Database != datadir.Postgres || c.Postgres != url || c.SiteID != 3 {
		t.Fatalf("recorded %+v, %t", c, ok)
	}
	if st, err := os.Stat(filepath.Join(n.dir, datadir.ChoiceFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600 (the URL may hold a password)", datadir.ChoiceFile, err, st.Mode())
	}
	if !strings.Contains(out.String(), "now uses the database at postgres://") {
		t.Errorf("switch report:\n%s", out)
	}
	// A copy of a node that moved to PostgreSQL would bring old data back.
	other := pgtest.URL(t)
	if err := tl.Copy(ctx, other); err == nil || !strings.Contains(err.Error(), "moved to PostgreSQL") {
		t.Errorf("copy after the switch: %v", err)
	}
	if err := tl.SwitchToPostgres(ctx, ToPostgres{URL: other, SiteID: 1, Copy: true}); err == nil || !strings.Contains(err.Error(), "already runs on PostgreSQL") {
		t.Errorf("switch --copy after the switch: %v", err)
	}
}

// TestSwitchWithCopyAdoptsTheNodesKey moves a node with --copy and no
// LOBBY_CLUSTER_KEY: its own key becomes the cluster key. Back on the
// embedded database, the operator hears what the cluster gained since.
func TestSwitchWithCopyAdoptsTheNodesKey(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := runNode(t, server.Config{})
	url := pgtest.URL(t)
	tl, out := tool(n.dir, "")
	err := tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 1})
	if err == nil || !strings.Contains(err.Error(), "add --copy") {
		t.Fatalf("switch to an empty database without --copy: %v", err)
	}
	must(t, tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 1, Copy: true}))
	if !strings.Contains(out.String(), "which is now the cluster key") {
		t.Errorf("switch report does not say the node's key is the cluster key:\n%s", out)
	}
	own, err := pki.ReadStandaloneKey(n.dir)
	must(t, err)
	pg := openStore(t, store.Postgres, url)
	if fp, err := caOf(t, pg, own); err != nil || fp != n.ca {
		t.Errorf("the CA on PostgreSQL with the node's key: %s, %v", fp, err)
	}

	// The cluster gains a user; back on the embedded database, the
	// operator is told, and the user stays in PostgreSQL.
	must(t, pg.CreateUser(ctx, &lobby.User{Username: "newcomer", Role: lobby.RoleUser}, "h"))
	tl, out = tool(n.dir, "")
	must(t, tl.SwitchToEmbedded(ctx, "", false))
	if !strings.Contains(out.String(), "gained what") || !strings.Contains(out.String(), "users 1") {
		t.Errorf("switch back report:\n%s", out)
	}
	c, _, err := datadir.ReadChoice(n.dir)
	must(t, err)
	if c.Database != datadir.Embedded {
		t.Errorf("recorded %+v", c)
	}
}

// TestSwitchBackWithCopy brings a cluster's data into a new embedded
// database, its CA sealed with the node's own key.
func TestSwitchBackWithCopy(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url, key := pgtest.URL(t), pki.NewClusterKeyString()
	cl := runNode(t, server.Config{Postgres: url, ClusterKey: key, SiteID: 1})

	dir := t.TempDir()
	tl, _ := tool(dir, key)
	must(t, tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 2}))
	err := tl.SwitchToEmbedded(ctx, "", false)
	if err == nil || !strings.Contains(err.Error(), "add --copy") {
		t.Fatalf("switch back with no embedded database: %v", err)
	}
	tl.ClusterKey = ""
	err = tl.SwitchToEmbedded(ctx, "", true)
	if err == nil || !strings.Contains(err.Error(), "LOBBY_CLUSTER_KEY") {
		t.Fatalf("copy back without the cluster key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.SQLiteFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused copy back left %s: %v", datadir.SQLiteFile, err)
	}
	tl, out := tool(dir, key)
	must(t, tl.SwitchToEmbedded(ctx, "", true))
	if !strings.Contains(out.String(), "in one transaction") {
		t.Errorf("copy back report:\n%s", out)
	}
	lite := openStore(t, store.SQLite, filepath.Join(dir, datadir.SQLiteFile))
	sameData(t, openStore(t, store.Postgres, url), lite)
	own, err := pki.ReadStandaloneKey(dir)
	must(t, err)
	if fp, err := caOf(t, lite, own); err != nil || fp != cl.ca {
		t.Errorf("the embedded CA with the node's own key: %s, %v; want %s", fp, err, cl.ca)
	}
}

// TestRefusals checks each refusal says why, and changes nothing.
func TestRefusals(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	n := runNode(t, server.Config{})
	t.Run("node running", func(t *testing.T) {
		l, err := datadir.Acquire(n.dir, "a Lobby node")
		must(t, err)
		defer l.Release()
		tl, _ := tool(n.dir, "")
		err = tl.Copy(ctx, "postgres://nobody@127.0.0.1:1/x")
		if !errors.Is(err, datadir.ErrInUse) || !strings.Contains(err.Error(), "a Lobby node (pid") {
			t.Errorf("copy of a running node: %v", err)
		}
	})
	t.Run("no embedded database", func(t *testing.T) {
		tl, _ := tool(t.TempDir(), "")
		if err := tl.Copy(ctx, "postgres://nobody@127.0.0.1:1/x"); err == nil || !strings.Contains(err.Error(), "never ran standalone") {
			t.Errorf("copy of an empty directory: %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		tl, _ := tool(n.dir, "")
		err := tl.Copy(ctx, "postgres://nobody:secret@127.0.0.1:1/x?connect_timeout=5")
		if err == nil || !strings.Contains(err.Error(), "cannot reach PostgreSQL at postgres://nobody@127.0.0.1:1/x") || strings.Contains(err.Error(), "secret") {
			t.Errorf("copy to a closed port: %v", err)
		}
	})
	t.Run("newer schema", func(t *testing.T) {
		url := pgtest.URL(t)
		db, err := postgres.Open(ctx, url, quiet)
		must(t, err)
		db.Close()
		pg, err := storecopy.OpenPostgres(ctx, url)
		must(t, err)
		defer pg.Close()
		_, err = pg.SQL.ExecContext(ctx, "INSERT INTO lobby_schema_version (version_id, is_applied) VALUES (999, true)")
		must(t, err)
		tl, _ := tool(n.dir, "")
		if err := tl.Copy(ctx, url); err == nil || !strings.Contains(err.Error(), "schema version 999, newer") {
			t.Errorf("copy into a newer schema: %v", err)
		}
		if err := tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 1, Copy: true}); err == nil || !strings.Contains(err.Error(), "schema version 999, newer") {
			t.Errorf("switch --copy into a newer schema: %v", err)
		}
		// Contracted beyond this Lobby: not even a node could join it.
		_, err = pg.SQL.ExecContext(ctx, "UPDATE schema_compat SET floor_version = 999")
		must(t, err)
		if err := tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 1}); err == nil || !strings.Contains(err.Error(), "needs a Lobby that knows schema 999") {
			t.Errorf("switch onto an incompatible schema: %v", err)
		}
	})
	t.Run("bad cluster key", func(t *testing.T) {
		tl, _ := tool(n.dir, "short")
		if err := tl.Copy(ctx, pgtest.URL(t)); err == nil || !strings.Contains(err.Error(), "LOBBY_CLUSTER_KEY") {
			t.Errorf("copy with a short key: %v", err)
		}
	})
}

// TestJoiningACluster switches a node with its own data onto another
// cluster's database: refused while it would leave data behind (or the
// site ID is taken, or the key is wrong), allowed with --discard-local,
// which keeps the embedded database as it is.
func TestJoiningACluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url, key := pgtest.URL(t), pki.NewClusterKeyString()
	runNode(t, server.Config{Postgres: url, ClusterKey: key, SiteID: 1})
	n := runNode(t, server.Config{})
	sqlitePath := filepath.Join(n.dir, datadir.SQLiteFile)
	before := fileHash(t, sqlitePath)

	tl, _ := tool(n.dir, pki.NewClusterKeyString())
	if err := tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 2}); err == nil || !strings.Contains(err.Error(), "not the cluster key") {
		t.Errorf("join with another key: %v", err)
	}
	tl, _ = tool(n.dir, key)
	err := tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 2})
	for _, want := range []string{"data that the database at", "users", "another certificate authority", "--discard-local"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("join leaving data behind: %v; want %q in it", err, want)
		}
	}

	// A live node holds site 5.
	pg := openStore(t, store.Postgres, url)
	live := &lobby.Node{SiteID: 5, Name: "busy", Address: "http://10.0.0.5:8080", Started: time.Now(), Heartbeat: time.Now()}
	must(t, pg.RegisterNode(ctx, live, "other", time.Now().Add(-time.Hour)))
	err = tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 5, DiscardLocal: true})
	if err == nil || !strings.Contains(err.Error(), `site ID 5 is held by node "busy"`) {
		t.Errorf("join on a live site ID: %v", err)
	}
	if _, ok, _ := datadir.ReadChoice(n.dir); ok {
		t.Fatal("a refused switch recorded a choice")
	}

	tl, out := tool(n.dir, key)
	must(t, tl.SwitchToPostgres(ctx, ToPostgres{URL: url, SiteID: 2, DiscardLocal: true}))
	if !strings.Contains(out.String(), "Leaving behind") {
		t.Errorf("report:\n%s", out)
	}
	if fileHash(t, sqlitePath) != before {
		t.Error("--discard-local changed the embedded database")
	}
}
