package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lobby/internal/health"
)

// TestHealthCommand runs `lobby health` against a standalone node's data
// directory: a healthy report as a table, as JSON and as an HTML file,
// exit 0; its mistakes exit 2 with what to do.
func TestHealthCommand(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	startNode(t, []string{"--data", data, "--listen", "127.0.0.1:0", "--plain-http", "--name", "solo"}, map[string]string{"LOBBY_ADMIN_PASSWORD": "first admin password"})

	run := func(args []string, vars map[string]string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runHealth(context.Background(), args, &out, &errb, env(vars))
		return code, out.String(), errb.String()
	}
	var rep health.Report
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out, stderr := run([]string{"--data", data, "--json"}, nil)
		rep = health.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("lobby health --json printed %q (stderr %q): %v", out, stderr, err)
		}
		_, probed := rep.Check("reach/1-1")
		if code == 0 && probed && rep.Status == health.OK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lobby health never passed: exit %d\n%s", code, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c, ok := rep.Check("cluster-key"); !ok || c.Status != health.OK {
		t.Errorf("cluster-key = %+v: the standalone key in --data unseals the CA", c)
	}

	page := filepath.Join(t.TempDir(), "report.html")
	code, out, _ := run([]string{"--html", page}, map[string]string{"LOBBY_DATA": data})
	html, err := os.ReadFile(page)
	if code != 0 || !strings.HasPrefix(out, "Cluster health: OK") || !strings.Contains(out, "node 1 (solo)") || err != nil || !strings.Contains(string(html), `data-check="clock/1"`) {
		t.Errorf("lobby health --html: exit %d, table:\n%s\nHTML (%v):\n%.200s", code, out, err, html)
	}

	for _, tt := range []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"unknown flag", []string{"--colour"}, nil, "flag provided but not defined"},
		{"no database in --data", []string{"--data", t.TempDir()}, nil, "give the --data directory of a node that has started"},
		{"short cluster key", []string{"--data", data}, map[string]string{"LOBBY_CLUSTER_KEY": "short"}, "lobby admin cluster-key"},
		{"bad skew", []string{"--data", data, "--max-clock-skew", "-1s"}, nil, "--max-clock-skew"},
		{"not a URL", []string{"--postgres", "db.example.com"}, nil, "is not a PostgreSQL URL"},
		{"argument", []string{"--data", data, "now"}, nil, `unexpected argument "now"`},
	} {
		code, _, stderr := run(tt.args, tt.vars)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, stderr, tt.want)
		}
	}

	// A database that does not answer is a failed check, with the report.
	code, out, _ = run([]string{"--postgres", "postgres://lobby@127.0.0.1:1/lobby?connect_timeout=2", "--json"}, nil)
	rep = health.Report{}
	_ = json.Unmarshal([]byte(out), &rep)
	if c, _ := rep.Check("store"); code != 1 || c.Status != health.Fail || !strings.Contains(c.Detail, "cannot read the database postgres://lobby@127.0.0.1:1/lobby") {
		t.Errorf("unreachable database: exit %d, store check %+v", code, c)
	}
}

// TestServerHealthOptions: the watchdog's limits and the skew limit are
// options of lobby server like the others; too short a limit is refused.
func TestServerHealthOptions(t *testing.T) {
	t.Parallel()
	m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: env(map[string]string{"LOBBY_WATCHDOG_STORE": "3s"})}
	if err := m.ParseFlags("server", []string{"--max-clock-skew", "90s", "--watchdog-loop", "20s"}); err != nil {
		t.Fatal(err)
	}
	if c := m.Config; c.MaxClockSkew != 90*time.Second || c.WatchdogStore != 3*time.Second || c.WatchdogLoop != 20*time.Second {
		t.Fatalf("got skew %s, store %s, loop %s", c.MaxClockSkew, c.WatchdogStore, c.WatchdogLoop)
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"server", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--watchdog-loop", "500ms"}, io.Discard, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "--watchdog-loop 500ms is too short") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
