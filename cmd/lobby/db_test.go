package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"lobby/internal/datadir"
	"lobby/internal/store/pgtest"
)

func TestDBMoveUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"copy", "-h"}, 0, "Usage: lobby admin db copy"},
		{[]string{"switch", "--help"}, 0, "--discard-local"},
		{[]string{"copy", "--data", dir}, 2, "give --postgres URL"},
		{[]string{"switch", "--data", dir}, 2, "or --embedded"},
		{[]string{"switch", "--data", dir, "--postgres", "postgres://x@h/db"}, 2, "give --site-id N"},
		{[]string{"switch", "--data", dir, "--postgres", "postgres://x@h/db", "--site-id", "70000"}, 2, "from 1 to 65535"},
		{[]string{"switch", "--data", dir, "--embedded", "--site-id", "2"}, 2, "--site-id and --discard-local are for --postgres"},
		{[]string{"switch", "--data", dir, "--nope"}, 2, "flag provided but not defined"},
		{[]string{"copy", "--data", dir, "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"copy", "--data", dir, "--postgres", "postgres://x@h/db", "--log-level", "loud"}, 2, "--log-level"},
		// Checks that refuse exit 1.
		{[]string{"copy", "--data", dir + "/missing", "--postgres", "postgres://x@h/db"}, 1, "does not exist"},
		{[]string{"switch", "--data", dir, "--embedded"}, 0, "already uses its embedded database"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := runDBMove(context.Background(), tt.args, &out, &errb, env(nil))
		if code != tt.code || !strings.Contains(out.String()+errb.String(), tt.want) {
			t.Errorf("lobby admin db %s: exit %d, want %d with %q:\n%s%s", strings.Join(tt.args, " "), code, tt.code, tt.want, out.String(), errb.String())
		}
	}
	// The environment gives the options, as for the server.
	var errb bytes.Buffer
	code := runDBMove(context.Background(), []string{"switch", "--data", dir}, io.Discard, &errb, env(map[string]string{"LOBBY_POSTGRES": "postgres://x@h/db"}))
	if code != 2 || !strings.Contains(errb.String(), "give --site-id N") {
		t.Errorf("switch with LOBBY_POSTGRES: exit %d: %s", code, errb.String())
	}
}

// TestServerUsesTheRecordedDatabase checks that `lobby server --data DIR`
// takes the database recorded by `lobby admin db switch`, that
// --postgres wins and says so, and that lobby dev refuses a directory
// moved to PostgreSQL.
func TestServerUsesTheRecordedDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := datadir.WriteChoice(dir, datadir.Choice{Database: datadir.Postgres, Postgres: "postgres://lobby@db/lobby", SiteID: 4, Switched: time.Now()}); err != nil {
		t.Fatal(err)
	}
	parse := func(cmd string, args ...string) (*Main, string, error) {
		var errb bytes.Buffer
		m := &Main{Stdout: io.Discard, Stderr: &errb, Getenv: env(nil)}
		err := m.ParseFlags(cmd, append([]string{"--data", dir}, args...))
		return m, errb.String(), err
	}
	m, log, err := parse("server")
	if err != nil || m.Config.Postgres != "postgres://lobby@db/lobby" || m.Config.SiteID != 4 || !strings.Contains(log, "as recorded in") {
		t.Errorf("recorded: err %v, postgres %q, site %d, log %q", err, m.Config.Postgres, m.Config.SiteID, log)
	}
	m, _, err = parse("server", "--site-id", "9")
	if err != nil || m.Config.SiteID != 9 {
		t.Errorf("--site-id over the recorded one: err %v, site %d", err, m.Config.SiteID)
	}
	m, log, err = parse("server", "--postgres", "postgres://other@db/x")
	if err != nil || m.Config.Postgres != "postgres://other@db/x" || !strings.Contains(log, "wins over the postgres database recorded") {
		t.Errorf("--postgres over the recorded one: err %v, postgres %q, log %q", err, m.Config.Postgres, log)
	}
	if _, _, err := parse("dev"); err == nil || !strings.Contains(err.Error(), "lobby server --data") {
		t.Errorf("lobby dev on a directory moved to PostgreSQL: %v", err)
	}
}

// TestMigrateUsesTheRecordedDatabase checks that `lobby admin db migrate
// --data DIR` migrates the database the node runs on, the one `lobby
// admin db switch` recorded, not the embedded one it left.
func TestMigrateUsesTheRecordedDatabase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := datadir.WriteChoice(dir, datadir.Choice{Database: datadir.Postgres, Postgres: pgtest.URL(t), SiteID: 1, Switched: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := runDBMigrate(context.Background(), []string{"--data", dir}, &out, &errb, env(nil))
	if code != 0 || !strings.Contains(out.String(), "Database:  PostgreSQL, schema 0") {
		t.Fatalf("migrate --data of a node on PostgreSQL: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
